"""What ``import mmevit`` changes outside mmevit, why, and how to keep it
from doing so.

Importing mmevit registers its models, hooks and runner in its own
``mmevit`` scope registries (:mod:`mmevit.registry`). The changes listed in
:data:`IMPORT_CHANGES` reach beyond mmevit; each is made only where it is
needed, and setting its environment variable to ``0`` before the import
switches it off. The README's *What importing mmevit changes* lists the
same changes with the same effects (tests/test_import_changes.py compares
both with what a fresh process sees).
"""
import dataclasses
import os
from typing import Callable, Tuple

from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import HOOKS, MODELS, RUNNERS

from .checkpoint import register_local_checkpoint_loader
from .engine import SafeCheckpointHook, SegDataCheckHook, StrictLoadRunner
from .models import EfficientViT, EfficientViTFPN
from .stack import torch_loads_weights_only

#: mmengine's root registries and the classes ``import mmevit`` adds to
#: them under their plain names, by the name the effects use.
PLAIN_NAMES = {
    'MODELS': (MODELS, (EfficientViT, EfficientViTFPN)),
    'HOOKS': (HOOKS, (SafeCheckpointHook, SegDataCheckHook)),
    'RUNNERS': (RUNNERS, (StrictLoadRunner, )),
}


def register_plain_names():
    """Add mmevit's classes to mmengine's root registries under their plain
    names, so ``type='EfficientViT'`` builds from mmdet and mmseg configs
    (whose scopes search their own registry and then the root, never
    another package's). A name the root already gives another class is left
    to it: that config needs the scoped name (``mmevit.EfficientViT``)."""
    for registry, classes in PLAIN_NAMES.values():
        for cls in classes:
            if registry.module_dict.get(cls.__name__) in (None, cls):
                registry.register_module(module=cls, force=True)


def add_config_prefix():
    """Let mmengine resolve ``mmevit::`` config paths to mmevit's configs."""
    MODULE2PACKAGE.setdefault('mmevit', 'mmevit')


@dataclasses.dataclass(frozen=True)
class ImportChange:
    """One change ``import mmevit`` makes outside mmevit.

    Args:
        switch (str): Environment variable; ``0`` switches the change off.
        effects (tuple[str]): What it changes, as the README and the tests
            name it: ``MODELS.EfficientViT`` (a name in a root registry),
            ``MODULE2PACKAGE['mmevit']``, ``CheckpointLoader['']`` (a scheme
            of mmengine's checkpoint loader).
        needed (Callable[[], bool]): Whether this process needs it.
        apply (Callable[[], None]): Makes the change.
    """
    switch: str
    effects: Tuple[str, ...]
    needed: Callable[[], bool]
    apply: Callable[[], None]

    @property
    def enabled(self):
        """Needed here and not switched off."""
        return os.environ.get(self.switch, '1') != '0' and self.needed()


IMPORT_CHANGES = (
    ImportChange(
        'MMEVIT_PLAIN_NAMES',
        tuple(f'{name}.{cls.__name__}'
              for name, (_, classes) in PLAIN_NAMES.items() for cls in classes),
        lambda: True, register_plain_names),
    ImportChange('MMEVIT_CONFIG_PREFIX', ("MODULE2PACKAGE['mmevit']", ),
                 lambda: True, add_config_prefix),
    ImportChange('MMEVIT_PATCH_CHECKPOINT_LOADER', ("CheckpointLoader['']", ),
                 torch_loads_weights_only, register_local_checkpoint_loader),
)


def apply_import_changes():
    """Make every enabled change of :data:`IMPORT_CHANGES`; ``import
    mmevit`` calls it."""
    for change in IMPORT_CHANGES:
        if change.enabled:
            change.apply()
