"""mmevit: EfficientViT backbones and FPN necks for mmdet and mmseg.

Importing the package checks the installed stack (:mod:`mmevit.stack`),
registers the models, hooks and runner in the ``mmevit`` scope
(:mod:`mmevit.registry`) and makes the changes outside mmevit listed in
:mod:`mmevit.import_changes` (the README's *What importing mmevit changes*):
the plain model names in mmengine's root registries, the ``mmevit::``
config prefix and, on torch 2.6+ only, mmevit's restricted loader for
mmengine's local checkpoints. Each can be switched off.
"""
from .stack import check_stack

check_stack()

from .import_changes import apply_import_changes  # noqa: E402
from .models import EfficientViT, EfficientViTFPN  # noqa: E402
from .version import __version__  # noqa: E402

apply_import_changes()

__all__ = ['EfficientViT', 'EfficientViTFPN', '__version__']
