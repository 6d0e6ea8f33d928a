"""The bare backbone of an arch (models of configs:
:func:`mmevit.tools.build_model`)."""
from mmevit.errors import ConfigError
from mmevit.models import EfficientViT


def check_arch(arch):
    """Return ``arch`` in lower case if it names a variant, else raise
    :class:`ConfigError` listing the variants."""
    if arch.lower() not in EfficientViT.arch_zoo:
        raise ConfigError(
            f'unknown arch {arch!r}; choose one of '
            f'{sorted(EfficientViT.arch_zoo)}')
    return arch.lower()


def build_backbone(arch):
    """An :class:`EfficientViT` backbone (random weights) in eval mode."""
    return EfficientViT(arch=check_arch(arch)).eval()
