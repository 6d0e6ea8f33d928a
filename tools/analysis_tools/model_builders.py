"""Build a model (an arch or an mmdet/mmseg config) and the parts to time.

A *part* is a callable on an image batch: ``backbone`` (the backbone alone),
``backbone+neck`` (``extract_feat``) and ``model`` (the whole detector or
segmentor in ``predict`` mode, post-processing included).
"""
from mmcv.cnn import fuse_conv_bn
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings

from mmevit.engine import replace_sync_bn, task_of
from mmevit.errors import ConfigError
from mmevit.models import EfficientViT

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


def build_from_config(config, cfg_options=None):
    """Build the detector or segmentor of a config (random weights, eval).

    SyncBN becomes BN (one process); ``init_cfg`` checkpoints are not
    loaded, since speed and FLOPs do not depend on weight values.

    Args:
        config (str): Config path, or ``mmdet::...``/``mmseg::...``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        tuple[nn.Module, str]: The model and its task, 'mmdet' or 'mmseg'.
    """
    try:
        cfg = get_config(config) if '::' in config else Config.fromfile(config)
    except FileNotFoundError:
        raise ConfigError(f'config not found: {config}') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    task = task_of(cfg)
    replace_sync_bn(cfg.model)
    init_default_scope(task)
    return MODELS.build(cfg.model).eval(), task


def data_samples(task, images):
    """Per-image meta information that ``predict`` needs (no resizing)."""
    shape = tuple(images.shape[2:])
    if task == 'mmdet':
        from mmdet.structures import DetDataSample
        meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                    batch_input_shape=shape, scale_factor=(1., 1.))
        return [DetDataSample(metainfo=meta) for _ in images]
    from mmseg.structures import SegDataSample
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                batch_input_shape=shape, padding_size=[0, 0, 0, 0])
    return [SegDataSample(metainfo=meta) for _ in images]


def model_parts(model, task, parts):
    """Callables ``f(images)`` for the requested parts of ``model``.

    Args:
        model (nn.Module): An :class:`EfficientViT` (``task`` None) or a
            detector/segmentor built by :func:`build_from_config`.
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
        'model': lambda x: model.predict(x, data_samples(task, x)),
    }
    return {p: table[p] for p in parts}


def deploy_model(model):
    """Fold BN for inference: :meth:`EfficientViT.switch_to_deploy` where a
    module has it, mmcv's ``fuse_conv_bn`` on every other Conv+BN pair."""
    for module in model.modules():
        if hasattr(module, 'switch_to_deploy'):
            module.switch_to_deploy()
    return fuse_conv_bn(model)
