"""``OnnxDetector``: an exported mmdet detector in onnxruntime, registered
in mmdet's model registry when this module is imported (by
:func:`.runtime.onnx_model_cfg` for an mmdet config; mmseg is not
imported)."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.detectors import BaseDetector
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
from mmdet.registry import MODELS
from mmdet.structures.bbox import scale_boxes
from mmengine.structures import InstanceData

from .session import OnnxSession


def image_masks(logits, stride, mask_thr_binary, sample, rescale=True):
    """(D, h, w) mask logits over the padded input at ``stride`` -> (D, H, W)
    bool masks of ``sample``'s original image (``rescale``) or of the padded
    input: ``RTMDetInsHead._bbox_mask_post_process``'s steps."""
    if not len(logits):
        height, width = sample.ori_shape[:2] if rescale else sample.img_shape[:2]
        return torch.zeros((0, height, width), dtype=torch.bool)
    logits = F.interpolate(logits[None], scale_factor=stride, mode='bilinear')
    if rescale:
        height, width = sample.ori_shape[:2]
        # as mmdet: the width factor resizes the height, and the other way
        factor = [1 / s for s in sample.scale_factor]
        logits = F.interpolate(logits, size=[
            math.ceil(logits.shape[-2] * factor[0]), math.ceil(logits.shape[-1] * factor[1])],
            mode='bilinear', align_corners=False)[..., :height, :width]
    return logits.sigmoid()[0] > mask_thr_binary


@MODELS.register_module()
class OnnxDetector(BaseDetector):
    """An exported detector in onnxruntime (predict mode only).

    Boxes are rescaled to the original image like the PyTorch model's. A
    file with ``masks`` gives instance masks of the original image's size:
    Mask R-CNN's probability maps are pasted into their boxes with mmdet's
    ``_do_paste_mask`` and thresholded at ``mask_thr_binary``, as mmdet's
    ``FCNMaskHead`` does on CPU; RTMDet-Ins's mask logits over the input
    (a file with ``mask_stride``) are resized and thresholded as in
    ``RTMDetInsHead._bbox_mask_post_process``.

    Args:
        onnx_file (str): The ``.onnx`` file from ``tools/deploy.py``.
        data_preprocessor (dict): The config's data preprocessor.
        mask_thr_binary (float): The config's ``mask_thr_binary``
            (``test_cfg.rcnn``'s for Mask R-CNN); for Mask R-CNN a negative
            value keeps the pasted probabilities as uint8 (x 255).
            Defaults to 0.5.
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
            if masks and self.session.mask_stride:
                result.masks = image_masks(masks[0][index][valid], self.session.mask_stride,
                                           self.mask_thr_binary, sample, rescale)
            elif masks:
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
        """The file's outputs: boxes clipped to each sample's ``img_shape``
        (the whole tensor without samples), ``min_bbox_size`` in the
        original image with ``rescale`` (each sample's ``scale_factor``)."""
        if batch_data_samples is None:
            return tuple(self.session(batch_inputs))
        return tuple(self.session(
            batch_inputs, [sample.img_shape[:2] for sample in batch_data_samples],
            [sample.scale_factor for sample in batch_data_samples] if rescale else None))

    def loss(self, batch_inputs, batch_data_samples):
        raise NotImplementedError('an ONNX model cannot be trained')

    def extract_feat(self, batch_inputs):
        raise NotImplementedError('the ONNX file ends with predictions')
