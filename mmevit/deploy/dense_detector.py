"""Export wrappers of one-stage mmdet detectors, inputs and outputs as
in :mod:`.contract`: dense heads (``BaseDenseHead.predict_by_feat``) and
RTMDet-Ins (``RTMDetInsHead.predict_by_feat``), batched, post-processed by
:func:`.postprocess.dense_detections`.
"""
import torch
from torch import nn

from .postprocess import coder_problem, dense_detections, head_kind, nms_problem

#: The kinds of :data:`.postprocess.HEADS` a one-stage wrapper exports.
SINGLE_STAGE_KINDS = ('dense', 'instance')


def dense_problem(detector):
    """What the single-stage wrappers cannot export in ``detector``: the
    unsupported head or setting, or None."""
    head = getattr(detector, 'bbox_head', None)
    if head_kind(head) not in SINGLE_STAGE_KINDS:
        return type(head or detector).__name__
    return coder_problem(head) or nms_problem(type(head).__name__, 'test_cfg',
                                              head.test_cfg)


class DenseDetectorExport(nn.Module):
    """Normalised image batch -> ``(dets, labels)``; see the module doc.

    Args:
        detector (nn.Module): An mmdet ``SingleStageDetector`` with a
            dense head in eval mode in which :func:`dense_problem` finds
            nothing.
    """

    output_names = ('dets', 'labels')

    def __init__(self, detector):
        super().__init__()
        self.detector = detector
        self.head = detector.bbox_head
        self.num_classes = self.head.num_classes

    @property
    def input_names(self):
        """``input``, ``image_size`` and, where the size filter depends on
        the resize (``min_bbox_size > 0``), ``scale_factor``."""
        names = ('input', 'image_size')
        return names + ('scale_factor', ) if self.head.test_cfg.get(
            'min_bbox_size', -1) > 0 else names

    def forward(self, x, image_size, scale_factor=None):
        outs = self.head(self.detector.extract_feat(x))
        return dense_detections(self.head, outs, image_size, scale_factor)[:2]


class InstanceDetectorExport(DenseDetectorExport):
    """Normalised image batch -> ``(dets, labels, masks)`` of RTMDet-Ins;
    see the module doc.

    Args:
        detector (nn.Module): An mmdet RTMDet-Ins in eval mode in which
            :func:`dense_problem` finds nothing.
    """

    output_names = ('dets', 'labels', 'masks')

    def __init__(self, detector):
        super().__init__(detector)
        self.mask_stride = self.head.prior_generator.strides[0][0]

    def forward(self, x, image_size, scale_factor=None):
        cls_scores, bbox_preds, kernel_preds, prototypes = self.head(
            self.detector.extract_feat(x))
        dets, labels, prior_index = dense_detections(
            self.head, (cls_scores, bbox_preds), image_size, scale_factor)
        kernels = torch.cat([kernel.flatten(2) for kernel in kernel_preds], 2)
        kernels = kernels.transpose(1, 2).gather(1, prior_index[..., None].expand(
            -1, -1, kernels.shape[1]))
        priors = torch.cat(self.head.prior_generator.grid_priors(
            [kernel.shape[-2:] for kernel in kernel_preds], dtype=x.dtype,
            device=x.device, with_stride=True))[prior_index]
        logits = self._mask_logits(prototypes, kernels, priors)
        return dets, labels, torch.where(labels[..., None, None] >= 0, logits, 0.)

    def _mask_logits(self, prototypes, kernels, priors):
        """(N, K, h, w) mask logits of the (N, K) detections' kernels and
        priors ``x, y, stride_x, stride_y`` on the (N, P, h, w) prototypes:
        ``RTMDetInsHead._mask_predict_by_feat_single`` for all images at
        once, its grouped 1x1 convolutions as matrix products."""
        head = self.head
        batch, _, height, width = prototypes.shape
        num_rows = kernels.shape[1]
        grid = head.prior_generator.single_level_grid_priors(
            (height, width), level_idx=0, dtype=prototypes.dtype,
            device=prototypes.device)
        relative = (priors[:, :, None, :2] - grid) / (priors[:, :, None, 2:3] * 8)
        x = torch.cat([relative.transpose(2, 3), prototypes.flatten(2)[:, None].expand(
            -1, num_rows, -1, -1)], 2)  # (N, K, 2 + P, h * w)
        params = kernels.split(head.weight_nums + head.bias_nums, -1)
        num_layers = len(head.weight_nums)
        for layer, (weight, bias) in enumerate(zip(params[:num_layers], params[num_layers:])):
            x = weight.reshape(batch, num_rows, -1, x.shape[2]) @ x + bias[..., None]
            if layer < num_layers - 1:
                x = x.relu()
        return x.reshape(batch, num_rows, height, width)
