"""The detector or segmentor of a config, built as the tools use it, and the
meta information its ``predict`` needs."""
from mmengine.config import Config
from mmengine.hub import get_config

from ..engine import task_of, task_registry
from ..errors import ConfigError
from .config_options import merge_cfg_options, replace_sync_bn
from .model_checks import check_model_channels


def load_config(config, cfg_options=None):
    """The config at path ``config``, or named ``mmdet::...``/``mmseg::...``
    (a config of an installed package), with ``cfg_options`` merged
    (:func:`merge_cfg_options`).

    Raises:
        ConfigError: No such config.
    """
    try:
        cfg = get_config(config) if '::' in config else Config.fromfile(config)
    except FileNotFoundError:
        raise ConfigError(f'config not found: {config}') from None
    merge_cfg_options(cfg, cfg_options)
    return cfg


def build_model(config, cfg_options=None):
    """Build the config's model on CPU in eval mode, its weights as
    initialised (no ``init_cfg`` checkpoint is loaded; load one strictly with
    :func:`mmevit.engine.load_model_checkpoint`).

    SyncBN becomes BN (one process), the task's modules are registered with
    its default scope, and the widths of backbone, neck and heads are checked
    (:func:`check_model_channels`).

    Args:
        config (str): Config path, or ``mmdet::...``/``mmseg::...``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        tuple[Config, str, nn.Module]: The config, its task (``'mmdet'`` or
        ``'mmseg'``) and the model.
    """
    cfg = load_config(config, cfg_options)
    task = task_of(cfg)
    replace_sync_bn(cfg.model)
    model = task_registry(task, 'MODELS').build(cfg.model).eval()
    check_model_channels(model)
    return cfg, task, model


def data_samples(task, height, width, num=1):
    """Meta information of ``num`` images of ``height`` x ``width`` as
    ``predict`` needs it when they are neither resized nor padded.

    Args:
        task (str): ``'mmdet'`` or ``'mmseg'``.
        height, width (int): The image size.
        num (int): Number of images. Defaults to 1.

    Returns:
        list[DetDataSample | SegDataSample]: One sample per image.
    """
    shape = (height, width)
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                batch_input_shape=shape, scale_factor=(1., 1.),
                padding_size=[0, 0, 0, 0])
    if task == 'mmdet':
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    return [Sample(metainfo=meta) for _ in range(num)]
