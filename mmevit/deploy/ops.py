"""Custom torch ops with ONNX translations for the exported graphs.

``torch.export`` keeps a :func:`torch.library.custom_op` as one node; the
ONNX exporter then writes it with the onnxscript function of
:data:`ONNX_TRANSLATIONS` (passed as ``custom_translation_table``). In eager
mode the ops run mmcv's compiled CPU kernels, so an export wrapper computes
the same thing in PyTorch and in onnxruntime.
"""
import torch
from torch import Tensor


@torch.library.custom_op('mmevit::nms', mutates_args=())
def nms(boxes: Tensor, scores: Tensor, max_output_boxes_per_class: int,
        iou_threshold: float, score_threshold: float) -> Tensor:
    """Per-class NMS with the semantics of ONNX ``NonMaxSuppression``.

    Args:
        boxes (Tensor): (N, B, 4) boxes, x1, y1, x2, y2.
        scores (Tensor): (N, C, B) score of every box for every class.
        max_output_boxes_per_class (int): Keep at most this many per class.
        iou_threshold (float): Suppress boxes overlapping a kept one more.
        score_threshold (float): Ignore boxes scoring at most this.

    Returns:
        Tensor: (M, 3) int64 rows ``(batch, class, box)`` of the kept boxes,
        in each (batch, class) by decreasing score.
    """
    from mmcv.ops import nms as mmcv_nms
    rows = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            candidates = (scores[b, c] > score_threshold).nonzero()[:, 0]
            if candidates.numel() == 0:
                continue
            _, kept = mmcv_nms(boxes[b, candidates], scores[b, c, candidates],
                               iou_threshold)
            kept = candidates[kept[:max_output_boxes_per_class]]
            rows.append(torch.stack(
                [torch.full_like(kept, b), torch.full_like(kept, c), kept], 1))
    if not rows:
        return boxes.new_zeros((0, 3), dtype=torch.int64)
    return torch.cat(rows).long()


@nms.register_fake
def _nms_fake(boxes, scores, max_output_boxes_per_class, iou_threshold,
              score_threshold):
    num_kept = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((num_kept, 3), dtype=torch.int64)


@torch.library.custom_op('mmevit::roi_align', mutates_args=())
def roi_align(features: Tensor, rois: Tensor, output_size: int,
              spatial_scale: float, sampling_ratio: int) -> Tensor:
    """RoIAlign with ``aligned=True`` (ONNX ``RoiAlign``, ``half_pixel``).

    Args:
        features (Tensor): (N, C, H, W) feature map.
        rois (Tensor): (R, 5) rows ``(batch index, x1, y1, x2, y2)`` in
            image pixels.
        output_size (int): Side of the square output.
        spatial_scale (float): Feature map size / image size.
        sampling_ratio (int): Samples per bin side; 0 means adaptive.

    Returns:
        Tensor: (R, C, output_size, output_size) average-pooled features.
    """
    from mmcv.ops import roi_align as mmcv_roi_align
    return mmcv_roi_align(features, rois, (output_size, output_size),
                          spatial_scale, sampling_ratio, 'avg', True)


@roi_align.register_fake
def _roi_align_fake(features, rois, output_size, spatial_scale,
                    sampling_ratio):
    return features.new_empty(
        (rois.shape[0], features.shape[1], output_size, output_size))


def _nms_onnx(boxes, scores, max_output_boxes_per_class: int,
              iou_threshold: float, score_threshold: float):
    from onnxscript import opset18 as op
    return op.NonMaxSuppression(
        boxes, scores,
        op.Constant(value_ints=[max_output_boxes_per_class]),
        op.Constant(value_floats=[iou_threshold]),
        op.Constant(value_floats=[score_threshold]),
        center_point_box=0)


def _roi_align_onnx(features, rois, output_size: int, spatial_scale: float,
                    sampling_ratio: int):
    from onnxscript import opset18 as op
    batch_indices = op.Cast(
        op.Squeeze(op.Slice(rois, [0], [1], [1]), [1]), to=7)  # int64
    boxes = op.Slice(rois, [1], [5], [1])
    return op.RoiAlign(
        features, boxes, batch_indices,
        coordinate_transformation_mode='half_pixel', mode='avg',
        output_height=output_size, output_width=output_size,
        sampling_ratio=sampling_ratio, spatial_scale=spatial_scale)


ONNX_TRANSLATIONS = {
    torch.ops.mmevit.nms.default: _nms_onnx,
    torch.ops.mmevit.roi_align.default: _roi_align_onnx,
}
