"""Export wrapper of an mmdet two-stage detector (Faster/Mask R-CNN),
inputs and outputs as in :mod:`.contract`: the test-time computation of
``RPNHead`` and ``StandardRoIHead`` batched, every size taken from tensors:

- RPN: :func:`.postprocess.dense_detections` with the levels as classes;
- box head: RoI features (:func:`.ops.roi_align` on the level that
  ``SingleRoIExtractor.map_roi_levels`` picks), softmax, per-class
  decoding and clipping, then :func:`.postprocess.nms_top_k`;
- mask head on the final boxes: the mask of each box's class, sigmoid.
"""
import torch
from torch import nn

from .ops import roi_align
from .postprocess import (
    INVALID,
    clip_to_image,
    coder_problem,
    dense_detections,
    head_kind,
    nms_problem,
    nms_top_k,
)


def two_stage_problem(detector):
    """What :class:`TwoStageDetectorExport` cannot export in ``detector``:
    the unsupported head or test setting, or None."""
    from mmcv.ops import RoIAlign
    from mmdet.models.roi_heads import SingleRoIExtractor, StandardRoIHead
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    rpn, roi = getattr(detector, 'rpn_head', None), detector.roi_head
    if rpn is None:
        return f'{type(detector).__name__} without an rpn_head'
    bbox_head = getattr(roi, 'bbox_head', None)
    heads = [(rpn, head_kind(rpn) == 'rpn'),
             (roi, type(roi) is StandardRoIHead and not roi.with_shared_head),
             (bbox_head, head_kind(bbox_head) == 'roi' and bbox_head.with_reg
              and not bbox_head.custom_cls_channels)]
    extractors = [roi.bbox_roi_extractor]
    if roi.with_mask:
        heads.append((roi.mask_head, type(roi.mask_head) is FCNMaskHead))
        extractors.append(roi.mask_roi_extractor)
    unsupported = next((head for head, ok in heads if not ok), None)
    if unsupported is not None:
        return type(unsupported).__name__
    for extractor in extractors:
        layer = extractor.roi_layers[0]
        if type(extractor) is not SingleRoIExtractor or type(layer) is not RoIAlign or \
                not layer.aligned or layer.pool_mode != 'avg' or layer.use_torchvision or \
                layer.output_size[0] != layer.output_size[1]:
            return (f'{type(extractor).__name__} with {type(layer).__name__}'
                    f'(aligned={getattr(layer, "aligned", None)})')
    return coder_problem(rpn) or coder_problem(bbox_head) or next(
        (problem for stage, cfg in (('rpn', rpn.test_cfg), ('rcnn', roi.test_cfg))
         if (problem := nms_problem(type(roi).__name__, f'test_cfg.{stage}', cfg))),
        None)


class TwoStageDetectorExport(nn.Module):
    """Normalised image batch -> ``(dets, labels[, masks])``; see the
    module doc.

    Args:
        detector (nn.Module): An mmdet ``TwoStageDetector`` in eval mode
            for which :func:`two_stage_problem` finds nothing.
    """

    def __init__(self, detector):
        super().__init__()
        self.detector = detector
        self.rpn_head = detector.rpn_head
        self.roi_head = detector.roi_head
        self.with_mask = self.roi_head.with_mask
        self.num_classes = self.roi_head.bbox_head.num_classes
        self.input_names = ('input', 'image_size')
        self.output_names = ('dets', 'labels', 'masks')[:3 if self.with_mask
                                                         else 2]

    def forward(self, x, image_size):
        feats = self.detector.extract_feat(x)
        # RPN: proposals by decreasing score (N, P, 4), which are valid
        proposals, levels, _ = dense_detections(self.rpn_head, self.rpn_head(feats),
                                                image_size, rpn=True)
        proposals, valid = proposals[..., :4], levels >= 0
        dets, labels = self._detections(feats, proposals, valid, image_size)
        if not self.with_mask:
            return dets, labels
        return dets, labels, self._masks(feats, dets, labels)

    def _detections(self, feats, proposals, valid, image_size):
        """Box head on the valid proposals, per-class NMS, top K:
        ``BBoxHead._predict_by_feat_single`` and
        ``mmdet.models.layers.multiclass_nms``, batched."""
        head = self.roi_head.bbox_head
        cfg = self.roi_head.test_cfg
        batch, num_proposals = valid.shape
        b, slot = valid.nonzero().unbind(1)
        rois = torch.cat([b[:, None].to(proposals.dtype),
                          proposals[b, slot]], 1)
        cls_score, bbox_pred = head(self._roi_features(
            self.roi_head.bbox_roi_extractor, feats, rois))
        scores = cls_score.softmax(-1)[:, :-1]
        num_classes = scores.shape[1]
        num_reg = 1 if head.reg_class_agnostic else num_classes
        # (image, proposal, class) grids. Decoding the whole grid keeps
        # mmdet's coder away from the data-dependent number of valid rois.
        score_grid = scores.new_full(
            (batch, num_proposals, num_classes), INVALID).index_put(
                (b, slot), scores)
        delta_grid = bbox_pred.new_zeros(
            (batch, num_proposals, num_reg * 4)).index_put((b, slot),
                                                            bbox_pred)
        box_grid = head.bbox_coder.decode(
            proposals[:, :, None].expand(-1, -1, num_reg, -1).reshape(-1, 4),
            delta_grid.reshape(-1, 4))
        box_grid = clip_to_image(box_grid.reshape(batch, -1, 4),
                                 image_size).reshape(
            batch, num_proposals, num_reg, 4).expand(-1, -1, num_classes, -1)
        dets, labels, _ = nms_top_k(box_grid.transpose(1, 2), score_grid.transpose(1, 2),
                                    cfg.max_per_img, cfg.nms.iou_threshold, cfg.score_thr)
        return dets, labels

    def _masks(self, feats, dets, labels):
        """(N, K, M, M) mask probabilities of the detections' classes: the
        class selection and sigmoid of
        ``FCNMaskHead._predict_by_feat_single`` (the paste runs after the
        graph)."""
        head = self.roi_head.mask_head
        b, k = (labels >= 0).nonzero().unbind(1)
        rois = torch.cat([b[:, None].to(dets.dtype), dets[b, k, :4]], 1)
        logits = head(self._roi_features(
            self.roi_head.mask_roi_extractor, feats, rois))
        classes = labels[b, k] * (0 if head.class_agnostic else 1)
        size = logits.shape[-1]
        probs = logits.gather(1, classes[:, None, None, None].expand(
            -1, 1, size, size))[:, 0].sigmoid()
        return probs.new_zeros(
            (*labels.shape, size, size)).index_put((b, k), probs)

    @staticmethod
    def _roi_features(extractor, feats, rois):
        """``SingleRoIExtractor.forward`` with :func:`.ops.roi_align` per level
    (levels from the extractor's own ``map_roi_levels``)."""
        feats = feats[:extractor.num_inputs]
        layers = extractor.roi_layers
        size = layers[0].output_size[0]
        if len(feats) == 1:
            return roi_align(feats[0], rois, size, layers[0].spatial_scale,
                             layers[0].sampling_ratio)
        levels = extractor.map_roi_levels(rois, len(feats))
        out = feats[0].new_zeros(
            (rois.shape[0], extractor.out_channels, size, size))
        for level, (feat, layer) in enumerate(zip(feats, layers)):
            index = (levels == level).nonzero()[:, 0]
            out = out.index_put((index, ), roi_align(
                feat, rois[index], size, layer.spatial_scale,
                layer.sampling_ratio))
        return out
