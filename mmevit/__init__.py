"""mmevit: EfficientViT backbones and FPN necks for mmdet and mmseg.

Importing the package checks the installed stack (:mod:`mmevit.stack`),
registers the models (under their plain names and in the ``mmevit`` scope)
and the ``mmevit::`` config prefix, and, on torch 2.6+ only, routes
mmengine's local checkpoint loading through mmevit's restricted unpickler
(``MMEVIT_PATCH_CHECKPOINT_LOADER=0`` leaves mmengine's loader alone). The
README's *What importing mmevit changes* lists these.
"""
import os

from .stack import check_stack, torch_loads_weights_only

check_stack()

from mmengine.config.utils import MODULE2PACKAGE  # noqa: E402

from . import (  # noqa: E402
    engine,  # noqa: F401  (registers SegDataCheckHook)
    registry,  # noqa: F401  (the `mmevit.` scope)
)
from .checkpoint import register_local_checkpoint_loader  # noqa: E402
from .models import EfficientViT, EfficientViTFPN  # noqa: E402
from .version import __version__  # noqa: E402

if torch_loads_weights_only() and os.environ.get(
        'MMEVIT_PATCH_CHECKPOINT_LOADER', '1') != '0':
    register_local_checkpoint_loader()
MODULE2PACKAGE.setdefault('mmevit', 'mmevit')  # `mmevit::` config paths

__all__ = ['EfficientViT', 'EfficientViTFPN', '__version__']
