"""``OnnxDetector``: an exported mmdet detector in onnxruntime, registered
in mmdet's model registry when this module is imported (by
:func:`.runtime.onnx_model_cfg` for an mmdet config; mmseg is not
imported)."""
import numpy as np
import torch
from mmdet.models.detectors import BaseDetector
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
from mmdet.registry import MODELS
from mmdet.structures.bbox import scale_boxes
from mmengine.structures import InstanceData

from .session import OnnxSession


@MODELS.register_module()
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
        providers (Sequence[str], optional): onnxruntime execution
            providers, see :class:`.session.OnnxSession`.
    """

    def __init__(self, onnx_file, data_preprocessor=None, mask_thr_binary=0.5,
                 providers=None, init_cfg=None):
        super().__init__(data_preprocessor, init_cfg)
        self.session = OnnxSession(onnx_file, 'mmdet', providers=providers)
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
