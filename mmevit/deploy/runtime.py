"""Run an exported ``.onnx`` file in onnxruntime as an mmdet/mmseg model.

:class:`OnnxDetector` and :class:`OnnxSegmentor` are registered in mmdet's
and mmseg's model registries: a config whose ``model`` is swapped for one of
them (see :func:`onnx_model_cfg`) runs the ONNX file in the normal test
loop, with the config's data preprocessor, dataset, pipeline and evaluator.
The predictions are post-processed like the PyTorch model's (boxes rescaled
to the original image, Mask R-CNN's masks pasted into it, logits resized to
it).
"""
import json
import os.path as osp

import numpy as np
import torch
from mmdet.models.detectors import BaseDetector
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
from mmdet.registry import MODELS as DET_MODELS
from mmdet.structures.bbox import scale_boxes
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS as SEG_MODELS
from torch import nn

from ..engine import task_of
from ..errors import CheckpointError, ConfigError
from .contract import (
    IMAGE_SIZE_NAME,
    INPUT_NAME,
    METADATA_KEYS,
    SCALE_FACTOR_NAME,
    TASK_INPUTS,
    TASK_OUTPUTS,
)


class OnnxSession:
    """An onnxruntime CPU session of an mmevit ONNX file for one task.

    Args:
        path (str): The ``.onnx`` file.
        task (str): ``'mmdet'`` or ``'mmseg'``, the config's task.
        num_threads (int): onnxruntime intra-op threads; 0 lets it choose.

    Raises:
        CheckpointError: The file is not an ONNX model onnxruntime loads
            (random bytes, truncated).
        ConfigError: The file's inputs/outputs are not those of ``task``.
    """

    def __init__(self, path, task, num_threads=0):
        self.session = _load_session(path, num_threads)
        inputs = self.session.get_inputs()
        self.input_names = tuple(i.name for i in inputs)
        # float64 (mmdet rescales in double precision); float32 in files
        # exported before mmevit matched it
        self._scale_factor_dtype = next(
            (np.float32 for i in inputs if i.name == SCALE_FACTOR_NAME
             and i.type == 'tensor(float)'), np.float64)
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        _check_names(path, task, 'outputs', self.output_names,
                     TASK_OUTPUTS[task])
        _check_names(path, task, 'inputs', self.input_names,
                     TASK_INPUTS[task])
        meta = self.session.get_modelmeta().custom_metadata_map
        num_classes = meta.get(METADATA_KEYS['num_classes'])
        #: int | None: The exported model's number of classes (None in a
        #: file exported before mmevit recorded it).
        self.num_classes = None if num_classes is None else int(num_classes)
        self.dataset_meta = json.loads(
            meta.get(METADATA_KEYS['dataset_meta'], '{}'))
        #: str: ``'fp32'``, or ``'int8'`` for a quantized file.
        self.precision = meta.get(METADATA_KEYS['precision'], 'fp32')
        # As mmdet/mmseg datasets have them: a tuple of class names and a
        # list of colour tuples (JSON made lists of both).
        if 'classes' in self.dataset_meta:
            self.dataset_meta['classes'] = tuple(self.dataset_meta['classes'])
        if 'palette' in self.dataset_meta:
            self.dataset_meta['palette'] = [
                tuple(colour) for colour in self.dataset_meta['palette']]

    def __call__(self, inputs, image_size=None, scale_factor=None):
        """Run on a float tensor batch; returns the outputs as tensors.

        Args: as :meth:`feeds`.
        """
        arrays = self.session.run(
            None, self.feeds(inputs, image_size, scale_factor))
        return [torch.from_numpy(array) for array in arrays]

    def feeds(self, inputs, image_size=None, scale_factor=None):
        """The file's named input arrays for a float tensor batch.

        Args:
            inputs (Tensor): (N, 3, H, W) normalised, padded images.
            image_size (Sequence, optional): A detector's (height, width)
                of each image without the padding (``img_shape``).
                Defaults to the whole tensor.
            scale_factor (Sequence, optional): A detector's (width, height)
                resize factor of each image (mmdet's ``scale_factor``), for
                a file with a ``scale_factor`` input. Defaults to ones.
        """
        feeds = {INPUT_NAME: inputs.detach().float().cpu().numpy()}
        if IMAGE_SIZE_NAME in self.input_names:
            if image_size is None:
                image_size = [inputs.shape[2:]] * len(inputs)
            feeds[IMAGE_SIZE_NAME] = np.array(
                [[int(h), int(w)] for h, w in image_size], dtype=np.int64)
        if SCALE_FACTOR_NAME in self.input_names:
            if scale_factor is None:
                scale_factor = [(1., 1.)] * len(inputs)
            feeds[SCALE_FACTOR_NAME] = np.array(
                [[float(w), float(h)] for w, h in scale_factor],
                dtype=self._scale_factor_dtype)
        return feeds


def _load_session(path, num_threads):
    """An onnxruntime CPU session of ``path``.

    Raises:
        FileNotFoundError: There is no such file.
        CheckpointError: onnxruntime cannot load it (not an ONNX model,
            truncated).
    """
    import onnxruntime as ort
    if not osp.isfile(path):
        raise FileNotFoundError(f'ONNX file not found: {path}')
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    try:
        return ort.InferenceSession(path, options,
                                    providers=['CPUExecutionProvider'])
    except Exception as err:  # onnxruntime's InvalidProtobuf, Fail, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else \
            type(err).__name__
        raise CheckpointError(
            f'{path} is not an ONNX model that onnxruntime can load (not '
            f'from tools/deploy.py, or truncated): {reason}') from None


def _check_names(path, task, kind, names, choices):
    """Raise a ConfigError when the file's input or output ``names`` are
    none of the ``choices`` of a ``task`` config."""
    if names in choices:
        return
    wanted = ' or '.join(str(list(choice)) for choice in choices)
    raise ConfigError(
        f'{path} has {kind} {list(names)}; a {task} config needs {kind} '
        f'{wanted} (export it from this config with tools/deploy.py)')


@DET_MODELS.register_module()
class OnnxDetector(BaseDetector):
    """An exported detector in onnxruntime (predict mode only).

    Boxes are rescaled to the original image like the PyTorch model's. A
    file with ``masks`` (Mask R-CNN) gives instance masks of the original
    image's size: each detection's probability map is pasted into its box
    with mmdet's ``_do_paste_mask`` and thresholded at ``mask_thr_binary``,
    as mmdet's ``FCNMaskHead`` does on CPU.

    Args:
        onnx_file (str): The ``.onnx`` file from ``tools/deploy.py``.
        data_preprocessor (dict): The config's data preprocessor.
        mask_thr_binary (float): The config's ``test_cfg.rcnn``
            ``mask_thr_binary``; a negative value keeps the pasted
            probabilities as uint8 (x 255). Defaults to 0.5.
    """

    def __init__(self, onnx_file, data_preprocessor=None, mask_thr_binary=0.5,
                 init_cfg=None):
        super().__init__(data_preprocessor, init_cfg)
        self.session = OnnxSession(onnx_file, 'mmdet')
        self.mask_thr_binary = mask_thr_binary

    def predict(self, batch_inputs, batch_data_samples, rescale=True):
        dets, labels, *masks = self._forward(batch_inputs, batch_data_samples,
                                             rescale)
        results = []
        for index, (det, label, sample) in enumerate(
                zip(dets, labels, batch_data_samples)):
            valid = label >= 0
            boxes = det[valid, :4]  # clipped to img_shape in the graph
            if rescale:
                boxes = scale_boxes(
                    boxes, [1 / s for s in sample.scale_factor])
            result = InstanceData(
                bboxes=boxes, scores=det[valid, 4], labels=label[valid])
            if masks:
                result.masks = self._paste_masks(
                    masks[0][index][valid], boxes, sample, rescale)
            results.append(result)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _paste_masks(self, probs, boxes, sample, rescale):
        """(D, M, M) maps in ``boxes`` -> (D, H, W) masks of the original
        image (``rescale``) or of the resized one."""
        height, width = sample.ori_shape[:2]
        if not rescale:
            width_scale, height_scale = sample.scale_factor
            height = int(np.round(height * height_scale))
            width = int(np.round(width * width_scale))
        binary = self.mask_thr_binary >= 0
        masks = torch.zeros((len(boxes), height, width),
                            dtype=torch.bool if binary else torch.uint8)
        for i in range(len(boxes)):  # one at a time, as mmdet on CPU
            pasted, region = _do_paste_mask(probs[i:i + 1, None],
                                            boxes[i:i + 1], height, width)
            masks[(slice(i, i + 1), ) + region] = (
                pasted >= self.mask_thr_binary if binary else
                (pasted * 255).to(torch.uint8))
        return masks

    def _forward(self, batch_inputs, batch_data_samples=None, rescale=True):
        """The file's outputs; boxes are clipped to each sample's
        ``img_shape`` (the whole tensor without samples) and, with
        ``rescale``, a file's ``min_bbox_size`` applies to the original
        image (each sample's ``scale_factor``), as in mmdet."""
        if batch_data_samples is None:
            return tuple(self.session(batch_inputs))
        sizes = [sample.img_shape[:2] for sample in batch_data_samples]
        factors = [sample.scale_factor for sample in batch_data_samples
                   ] if rescale else None
        return tuple(self.session(batch_inputs, sizes, factors))

    def loss(self, batch_inputs, batch_data_samples):
        raise NotImplementedError('an ONNX model cannot be trained')

    def extract_feat(self, batch_inputs):
        raise NotImplementedError('the ONNX file ends with predictions')


class DecodeHeadFacts(nn.Module):
    """What the test loop reads from a decode head, without its layers."""

    def __init__(self, num_classes, ignore_index, threshold, align_corners):
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.align_corners = align_corners


@SEG_MODELS.register_module()
class OnnxSegmentor(BaseSegmentor):
    """An exported segmentor in onnxruntime (predict mode only).

    Args:
        onnx_file (str): The ``.onnx`` file from ``tools/deploy.py``.
        data_preprocessor (dict): The config's data preprocessor.
        decode_head (dict): ``num_classes``, ``ignore_index``,
            ``threshold`` and ``align_corners`` of the config's decode head
            (for the resize to the original image and the data checks).
    """

    def __init__(self, onnx_file, decode_head, data_preprocessor=None,
                 init_cfg=None):
        super().__init__(data_preprocessor, init_cfg)
        self.session = OnnxSession(onnx_file, 'mmseg')
        self.decode_head = DecodeHeadFacts(**decode_head)
        self.align_corners = self.decode_head.align_corners

    def predict(self, inputs, data_samples=None):
        seg_logits = self.session(inputs)[0]
        if data_samples is None:
            return [PixelData(data=logits.argmax(0, keepdim=True))
                    for logits in seg_logits]
        return self.postprocess_result(seg_logits, data_samples)

    def _forward(self, inputs, data_samples=None):
        return self.session(inputs)[0]

    def encode_decode(self, inputs, batch_data_samples):
        return self._forward(inputs)

    def loss(self, inputs, data_samples):
        raise NotImplementedError('an ONNX model cannot be trained')

    def extract_feat(self, inputs):
        raise NotImplementedError('the ONNX file ends with predictions')


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


def onnx_model_cfg(cfg, task, onnx_file):
    """The ``model`` config that runs ``onnx_file`` in place of ``cfg.model``.

    Keeps the config's data preprocessor, so the test loop feeds the ONNX
    file exactly what it feeds the PyTorch model.

    Raises:
        CheckpointError: onnxruntime cannot load the file.
        ConfigError: The file's task, inputs/outputs or number of classes
            are not those of the config, or it has ``masks`` where the
            config's model has no mask head (or the other way round).
    """
    session = OnnxSession(onnx_file, task)  # names a wrong file now
    check_num_classes(session, cfg, task, onnx_file)
    model = dict(onnx_file=onnx_file,
                 data_preprocessor=cfg.model.get('data_preprocessor'))
    if task == 'mmdet':
        model['type'] = 'OnnxDetector'
        with_mask = bool((cfg.model.get('roi_head') or {}).get('mask_head'))
        if with_mask != ('masks' in session.output_names):
            raise ConfigError(
                f'{onnx_file} has outputs {list(session.output_names)}; the '
                f'config\'s model has {"a" if with_mask else "no"} mask head '
                '(export it from this config with tools/deploy.py)')
        if with_mask:
            model['mask_thr_binary'] = cfg.model.test_cfg.rcnn.get(
                'mask_thr_binary', 0.5)
    else:
        mode = cfg.model.get('test_cfg', {}).get('mode', 'whole')
        if mode != 'whole':
            raise ConfigError(f'model.test_cfg.mode={mode!r}: the ONNX '
                              "segmentor runs in 'whole' mode only")
        model['type'] = 'OnnxSegmentor'
        head = cfg.model.decode_head
        model['decode_head'] = dict(
            num_classes=head.num_classes,
            ignore_index=head.get('ignore_index', 255),
            threshold=head.get('threshold', 0.3),
            align_corners=head.get('align_corners', False))
    return model


def init_onnx_model(config, onnx_file):
    """Build the onnxruntime model of ``onnx_file`` for ``config``.

    The result works with ``mmdet.apis.inference_detector`` /
    ``mmseg.apis.inference_model`` and the visualizers (``cfg`` and
    ``dataset_meta`` are set).

    Args:
        config (str | Config): The config the file was exported from.
        onnx_file (str): The ``.onnx`` file.

    Returns:
        BaseModel: An :class:`OnnxDetector` or :class:`OnnxSegmentor`.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    task = task_of(cfg)
    if task == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    model = MODELS.build(onnx_model_cfg(cfg, task, onnx_file))
    model.cfg = cfg
    model.dataset_meta = model.session.dataset_meta or _config_meta(cfg)
    return model.eval()


def _config_meta(cfg):
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    return dict(dataset.get('metainfo', {}))


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
    if isinstance(model, OnnxDetector):
        from mmdet.apis import inference_detector
        return inference_detector(model, images)
    from mmseg.apis import inference_model
    return inference_model(model, images)
