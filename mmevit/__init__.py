"""mmevit: EfficientViT backbones and FPN necks for mmdet and mmseg.

Importing the package registers the models (under their plain names and in
the ``mmevit`` scope) and makes torch >= 2.6 load mmengine's checkpoints with
the weights_only unpickler.
"""
from mmengine.config.utils import MODULE2PACKAGE

from . import (
    engine,  # noqa: F401  (registers SegDataCheckHook)
    registry,  # noqa: F401  (the `mmevit.` scope)
)
from .checkpoint import allow_mmengine_checkpoint_types, register_local_checkpoint_loader
from .models import EfficientViT, EfficientViTFPN
from .version import __version__

allow_mmengine_checkpoint_types()
register_local_checkpoint_loader()
MODULE2PACKAGE.setdefault('mmevit', 'mmevit')  # `mmevit::` config paths

__all__ = ['EfficientViT', 'EfficientViTFPN', '__version__']
