"""Run an exported ``.onnx`` file in onnxruntime as an mmdet/mmseg model.

:func:`onnx_model_cfg` swaps a config's ``model`` for an
:class:`~.onnx_detector.OnnxDetector` or
:class:`~.onnx_segmentor.OnnxSegmentor` (importing that module registers
it in its codebase's registry): the ONNX file then runs in the normal test
loop, with the config's data preprocessor, dataset, pipeline and evaluator.
The predictions are post-processed like the PyTorch model's (boxes rescaled
to the original image, Mask R-CNN's masks pasted into it, RTMDet-Ins's and
segmentation logits resized to it). This module imports neither mmdet nor
mmseg: a file runs with the codebase of its config only.
"""
import importlib

import numpy as np
from mmengine.config import Config

from ..engine import task_of, task_registry
from ..errors import ConfigError
from .session import OnnxSession

__all__ = ['OnnxSession', 'check_num_classes', 'config_num_classes',
           'inference_onnx', 'init_onnx_model', 'onnx_model_cfg',
           'use_onnx_file']

#: The onnxruntime model of each task, registered in the task's codebase
#: when the package's lazy import first reads it.
TASK_MODELS = {'mmdet': 'OnnxDetector', 'mmseg': 'OnnxSegmentor'}


def config_num_classes(cfg, task):
    """The number of classes of ``cfg``'s model and the key that sets it.

    Returns:
        tuple[int | None, str]: ``num_classes`` of the box head (RoI head's
        for a two-stage detector) or decode head; None where the config
        leaves it to the head's default.
    """
    if task == 'mmseg':
        head, key = cfg.model.decode_head, 'model.decode_head'
    elif cfg.model.get('roi_head'):
        head, key = cfg.model.roi_head.bbox_head, 'model.roi_head.bbox_head'
    else:
        head, key = cfg.model.get('bbox_head') or {}, 'model.bbox_head'
    return head.get('num_classes'), f'{key}.num_classes'


def check_num_classes(session, cfg, task, onnx_file):
    """Raise a ConfigError when the file was exported with another number
    of classes than ``cfg``'s model has (files without the metadata pass).
    """
    num_classes, key = config_num_classes(cfg, task)
    if None in (session.num_classes, num_classes) or \
            session.num_classes == num_classes:
        return
    raise ConfigError(
        f'{onnx_file} was exported with {session.num_classes} classes; the '
        f'config has {key}={num_classes} (export it from this config with '
        'tools/deploy.py)')


def onnx_model_cfg(cfg, task, onnx_file, providers=None):
    """The ``model`` config that runs ``onnx_file`` in place of ``cfg.model``
    (its model type is registered on return).

    Keeps the config's data preprocessor, so the test loop feeds the ONNX
    file exactly what it feeds the PyTorch model.

    Args:
        cfg (Config): The config the file was exported from.
        task (str): ``'mmdet'`` or ``'mmseg'``.
        onnx_file (str): The ``.onnx`` file.
        providers (Sequence[str], optional): onnxruntime execution
            providers; see :class:`.session.OnnxSession`.

    Raises:
        CheckpointError: onnxruntime cannot load the file.
        ConfigError: The file's task, inputs/outputs or number of classes
            are not those of the config, or it has ``masks`` where the
            config's model has no mask head (or the other way round), or a
            provider is not available.
    """
    # names a wrong file now
    session = OnnxSession(onnx_file, task, providers=providers)
    check_num_classes(session, cfg, task, onnx_file)
    model_type = getattr(importlib.import_module(__package__), TASK_MODELS[task])
    model = dict(type=model_type.__name__,
                 onnx_file=onnx_file, providers=providers,
                 data_preprocessor=cfg.model.get('data_preprocessor'))
    if task == 'mmdet':
        # Mask R-CNN's mask head, or RTMDet-Ins's test_cfg.mask_thr_binary
        test_cfg = cfg.model.get('test_cfg') or {}
        if cfg.model.get('roi_head'):
            with_mask = bool(cfg.model.roi_head.get('mask_head'))
            test_cfg = test_cfg.get('rcnn') or {}
        else:
            with_mask = 'mask_thr_binary' in test_cfg
        if with_mask != ('masks' in session.output_names):
            raise ConfigError(
                f'{onnx_file} has outputs {list(session.output_names)}; the '
                f'config\'s model has {"a" if with_mask else "no"} mask head '
                '(export it from this config with tools/deploy.py)')
        if with_mask:
            model['mask_thr_binary'] = test_cfg.get('mask_thr_binary', 0.5)
    else:
        mode = cfg.model.get('test_cfg', {}).get('mode', 'whole')
        if mode != 'whole':
            raise ConfigError(f'model.test_cfg.mode={mode!r}: the ONNX '
                              "segmentor runs in 'whole' mode only")
        head = cfg.model.decode_head
        model['decode_head'] = dict(
            num_classes=head.num_classes,
            ignore_index=head.get('ignore_index', 255),
            threshold=head.get('threshold', 0.3),
            align_corners=head.get('align_corners', False))
    return model


def use_onnx_file(cfg, task, onnx_file, providers=None):
    """Make the runner config ``cfg`` test ``onnx_file`` (in place).

    Its model becomes :func:`onnx_model_cfg`'s, nothing is loaded into it,
    and the config's EMA hook (RTMDet's ``custom_hooks``) is dropped: it
    deep-copies the model to swap averaged weights in, while the file
    already holds the weights it was exported with (mmengine saves the
    averaged ones as a checkpoint's ``state_dict``).

    Raises:
        The errors of :func:`onnx_model_cfg`.
    """
    cfg.model = onnx_model_cfg(cfg, task, onnx_file, providers)
    cfg.load_from, cfg.resume = None, False
    hooks = cfg.get('custom_hooks') or []
    cfg.custom_hooks = [hook for hook in hooks if not _hook_type_name(
        hook).endswith('EMAHook')]


def _hook_type_name(hook):
    kind = hook.get('type', '') if isinstance(hook, dict) else type(hook)
    return kind if isinstance(kind, str) else kind.__name__


def init_onnx_model(config, onnx_file, providers=None):
    """Build the onnxruntime model of ``onnx_file`` for ``config``.

    The result works with ``mmdet.apis.inference_detector`` /
    ``mmseg.apis.inference_model`` and the visualizers (``cfg`` and
    ``dataset_meta`` are set).

    Args:
        config (str | Config): The config the file was exported from.
        onnx_file (str): The ``.onnx`` file.
        providers (Sequence[str], optional): onnxruntime execution
            providers; see :class:`.session.OnnxSession`.

    Returns:
        BaseModel: An ``OnnxDetector`` or ``OnnxSegmentor``.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    task = task_of(cfg)
    models = task_registry(task, 'MODELS')
    model = models.build(onnx_model_cfg(cfg, task, onnx_file, providers))
    model.cfg = cfg
    model.dataset_meta = model.session.dataset_meta or dict(
        cfg.get('test_dataloader', {}).get('dataset', {}).get('metainfo', {}))
    return model.eval()


def inference_onnx(model, images):
    """Predict on images with a model from :func:`init_onnx_model`.

    Args:
        model (BaseModel): From :func:`init_onnx_model`.
        images (np.ndarray | str | list): BGR ``uint8`` array(s) (H, W, 3)
            or file name(s).

    Returns:
        DetDataSample | SegDataSample | list: ``pred_instances`` (boxes in
        the original image's pixels, scores, labels, and masks of the
        original image's size for Mask R-CNN) or ``pred_sem_seg``
        (label map of the original size); a list for a list input.
    """
    if isinstance(images, np.ndarray) and images.ndim != 3:
        raise ValueError(f'expected an (H, W, 3) image, got shape '
                         f'{images.shape}')
    if model.session.task == 'mmdet':
        from mmdet.apis import inference_detector
        return inference_detector(model, images)
    from mmseg.apis import inference_model
    return inference_model(model, images)
