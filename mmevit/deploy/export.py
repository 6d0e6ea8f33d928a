"""Whole-model ONNX export of mmdet/mmseg models built from a config.

The graph takes the normalised image batch and ends with the final
predictions, inputs, outputs and metadata as in :mod:`.contract`. It is
written with torch's ``torch.export``-based exporter; custom ops carry
their ONNX translations, so plain onnxruntime runs the file.
"""
import json
import os
import os.path as osp

import torch

from ..errors import ConfigError
from ..stack import require_export_torch

require_export_torch()  # before .ops, which defines torch.library custom ops

from .contract import IMAGE_SIZE_NAME, METADATA_KEYS, SCALE_FACTOR_NAME  # noqa: E402
from .dense_detector import DenseDetectorExport, InstanceDetectorExport, dense_problem  # noqa: E402
from .ops import ONNX_TRANSLATIONS  # noqa: E402
from .postprocess import HEADS, head_kind  # noqa: E402
from .segmentor import SegmentorExport  # noqa: E402
from .two_stage_detector import TwoStageDetectorExport, two_stage_problem  # noqa: E402

SUPPORTED = (f'mmdet single-stage detectors with {", ".join(HEADS["dense"])}; '
             f'mmdet two-stage detectors with {", ".join(HEADS["rpn"])} and StandardRoIHead '
             f'({", ".join(HEADS["roi"])}; FCNMaskHead or none; '
             'SingleRoIExtractor with aligned RoIAlign; Faster/Mask R-CNN); '
             'test_cfg nms type \'nms\', not class_agnostic; mmdet '
             f'instance segmentation with {", ".join(HEADS["instance"])} '
             '(RTMDet-Ins); mmseg EncoderDecoder (FPNHead and other decode '
             'heads) in whole test mode')

#: The export wrapper of each kind of single-stage head (:data:`HEADS`).
SINGLE_STAGE = {'dense': DenseDetectorExport, 'instance': InstanceDetectorExport}


def export_wrapper(task, model):
    """The module to export for ``model``.

    Raises:
        ConfigError: The model's head/post-processing is not supported.
    """
    if task == 'mmseg':
        from mmseg.models.segmentors import EncoderDecoder
        mode = model.test_cfg.get('mode', 'whole') if model.test_cfg else 'whole'
        if type(model) is EncoderDecoder and mode == 'whole':
            return SegmentorExport(model)
        what = f'{type(model).__name__} with test_cfg.mode={mode!r}'
    elif hasattr(model, 'roi_head'):
        what = two_stage_problem(model)
        if what is None:
            return TwoStageDetectorExport(model)
    else:
        what = dense_problem(model)
        if what is None:
            return SINGLE_STAGE[head_kind(model.bbox_head)](model)
    raise ConfigError(f'cannot export {what}: the exporter supports '
                      f'{SUPPORTED}')


def export_onnx(wrapper, path, task, shape=(320, 320), dynamic=(
        'batch', 'height', 'width'), dataset_meta=None, opset=18):
    """Export ``wrapper`` to ``path`` atomically.

    The file is written under a temporary name next to ``path`` and renamed
    when complete, so a failed export leaves nothing behind.

    Args:
        wrapper (nn.Module): From :func:`export_wrapper`.
        path (str): Output ``.onnx`` file.
        task (str): ``'mmdet'`` or ``'mmseg'``, stored in the metadata.
        shape (tuple[int, int]): Height and width of the traced input.
        dynamic (Sequence[str]): Axes of ``input`` left dynamic, from
            ``batch``, ``height``, ``width``.
        dataset_meta (dict, optional): Classes and palette to store.
        opset (int): ONNX opset. Defaults to 18.
    """
    axes = {'batch': 0, 'height': 2, 'width': 3}
    dims = {axes[name]: torch.export.Dim.DYNAMIC for name in dynamic}
    # torch.export specialises an example size of 1: trace batch 2.
    x = torch.randn(2 if 'batch' in dynamic else 1, 3, *shape)
    args, dynamic_shapes = (x, ), (dims, )
    if IMAGE_SIZE_NAME in wrapper.input_names:
        # One image smaller than the batch tensor, as after padding.
        image_size = torch.tensor([list(shape)] * len(x))
        image_size[0] -= 1
        args += (image_size, )
        dynamic_shapes += ({0: dims[0]} if 0 in dims else {}, )
    if SCALE_FACTOR_NAME in wrapper.input_names:
        args += (torch.full((len(x), 2), 1.5, dtype=torch.float64), )
        dynamic_shapes += ({0: dims[0]} if 0 in dims else {}, )
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper.eval(), args, input_names=list(wrapper.input_names),
            output_names=list(wrapper.output_names), opset_version=opset,
            dynamo=True, dynamic_shapes=dynamic_shapes,
            custom_translation_table=ONNX_TRANSLATIONS, verbose=False)
    metadata = {METADATA_KEYS['task']: task,
                METADATA_KEYS['num_classes']: str(wrapper.num_classes),
                METADATA_KEYS['precision']: 'fp32'}
    if getattr(wrapper, 'mask_stride', None):
        metadata[METADATA_KEYS['mask_stride']] = str(wrapper.mask_stride)
    if dataset_meta:
        metadata[METADATA_KEYS['dataset_meta']] = json.dumps(
            _jsonable(dataset_meta))
    program.model.metadata_props.update(metadata)
    partial = f'{path}.partial'
    try:
        program.save(partial)
        os.replace(partial, path)
    finally:
        if osp.exists(partial):
            os.remove(partial)


def _jsonable(meta):
    return {key: [list(v) if isinstance(v, tuple) else v for v in value]
            if isinstance(value, (list, tuple)) else value
            for key, value in meta.items()
            if isinstance(value, (list, tuple, str, int, float))}

