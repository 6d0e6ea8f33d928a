"""A backbone of an arch, and the parts of a model to time (models of
configs: :func:`mmevit.tools.build_model`).

A *part* is a callable on an image batch: ``backbone`` (the backbone alone),
``backbone+neck`` (``extract_feat``) and ``model`` (the whole detector or
segmentor in ``predict`` mode, post-processing included).
"""
from mmevit.errors import ConfigError
from mmevit.models import EfficientViT
from mmevit.tools import data_samples

PARTS = ('backbone', 'backbone+neck', 'model')


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


def model_parts(model, task, parts):
    """Callables ``f(images)`` for the requested parts of ``model``.

    Args:
        model (nn.Module): An :class:`EfficientViT` (``task`` None) or a
            detector/segmentor built by :func:`mmevit.tools.build_model`.
        task (str | None): 'mmdet', 'mmseg', or None for a bare backbone.
        parts (Sequence[str]): Names from :data:`PARTS`.

    Returns:
        dict[str, Callable]: One callable per requested part.
    """
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ConfigError(f'unknown parts {unknown}; choose from '
                                  f'{list(PARTS)}')
    if task is None:
        if list(parts) != ['backbone']:
            raise ConfigError(
                'an arch alone has only the part "backbone"; pass a config '
                'to time backbone+neck or the whole model')
        return {'backbone': model}
    table = {
        'backbone': model.backbone,
        'backbone+neck': model.extract_feat,
        'model': lambda x: model.predict(
            x, data_samples(task, *x.shape[2:], len(x))),
    }
    return {p: table[p] for p in parts}

