"""Export wrapper of an mmdet two-stage detector (Faster/Mask R-CNN).

Re-does the test-time computation of ``RPNHead`` and ``StandardRoIHead``
batched, with every size taken from tensors, so that the exported graph
stays dynamic:

- RPN: per level the top ``nms_pre`` anchors, box decoding, clipping,
  ``min_bbox_size`` filter, NMS with the levels as classes (mmdet's
  ``batched_nms`` with level ids), the ``max_per_img`` best proposals;
- box head: RoI features (:func:`.ops.roi_align` on the level that
  ``SingleRoIExtractor.map_roi_levels`` picks), softmax, per-class
  decoding and clipping, ``score_thr``, per-class NMS, ``max_per_img``;
- mask head on the final boxes: the mask of each box's class, sigmoid.

The inputs are those of :mod:`.dense_detector`: proposals and boxes are
clipped to ``image_size``, each image's size without the batch padding
(mmdet's ``img_shape``).

Outputs, padded to ``K = test_cfg.rcnn.max_per_img`` detections per image:
``dets`` (N, K, 5) and ``labels`` (N, K) as in :mod:`.dense_detector`
(padding rows zeros and -1); with a mask head also ``masks`` (N, K, M, M)
float, the probability map of each detection's class inside its box
(M = 28 for mmdet's ``FCNMaskHead``), padding zeros. As in mmdet, the maps
are pasted into the image and thresholded after the network, by
:class:`.runtime.OnnxDetector` with mmdet's paste code.
"""
import torch
from torch import nn

from .dense_detector import INVALID, clip_to_image, coder_problem, nms_problem, top_candidates
from .ops import nms, roi_align

#: The box heads of a ``StandardRoIHead`` the exporter supports, by class
#: name: each uses ``BBoxHead.predict_by_feat`` unchanged.
SUPPORTED_BBOX_HEADS = ('BBoxHead', 'ConvFCBBoxHead', 'Shared2FCBBoxHead',
                        'Shared4Conv1FCBBoxHead')


def two_stage_problem(detector):
    """What :class:`TwoStageDetectorExport` cannot export in ``detector``.

    Returns:
        str | None: The unsupported head (or its test setting), or None
        when the detector is supported.
    """
    from mmcv.ops import RoIAlign
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.roi_heads import SingleRoIExtractor, StandardRoIHead, bbox_heads
    rpn, roi = getattr(detector, 'rpn_head', None), detector.roi_head
    if rpn is None:
        return f'{type(detector).__name__} without an rpn_head'
    if type(rpn) is not RPNHead:
        return type(rpn).__name__
    if type(roi) is not StandardRoIHead or roi.with_shared_head:
        return type(roi).__name__
    bbox_head = roi.bbox_head
    if type(bbox_head) not in tuple(getattr(bbox_heads, name)
                                    for name in SUPPORTED_BBOX_HEADS) \
            or bbox_head.custom_cls_channels or not bbox_head.with_reg:
        return type(bbox_head).__name__
    problem = coder_problem(rpn) or coder_problem(bbox_head)
    if problem:
        return problem
    extractors = [roi.bbox_roi_extractor]
    if roi.with_mask:
        from mmdet.models.roi_heads.mask_heads import FCNMaskHead
        extractors.append(roi.mask_roi_extractor)
        if type(roi.mask_head) is not FCNMaskHead:
            return type(roi.mask_head).__name__
    for extractor in extractors:
        layer = extractor.roi_layers[0]
        if type(extractor) is not SingleRoIExtractor or \
                type(layer) is not RoIAlign or not layer.aligned or \
                layer.pool_mode != 'avg' or layer.use_torchvision or \
                layer.output_size[0] != layer.output_size[1]:
            return (f'{type(extractor).__name__} with '
                    f'{type(layer).__name__}'
                    f'(aligned={getattr(layer, "aligned", None)})')
    for stage, cfg in (('rpn', rpn.test_cfg), ('rcnn', roi.test_cfg)):
        problem = nms_problem(type(roi).__name__, f'test_cfg.{stage}', cfg)
        if problem:
            return problem
    return None


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
        proposals, valid = self._proposals(feats, image_size)
        dets, labels = self._detections(feats, proposals, valid, image_size)
        if not self.with_mask:
            return dets, labels
        return dets, labels, self._masks(feats, dets, labels)

    def _proposals(self, feats, image_size):
        """(N, P, 4) RPN proposals by decreasing score, (N, P) valid:
        ``RPNHead._predict_by_feat_single`` and ``_bbox_post_process``
        (``batched_nms`` with the levels as classes), batched."""
        head = self.rpn_head
        cfg = head.test_cfg
        cls_scores, bbox_preds = head(feats)
        priors = head.prior_generator.grid_priors(
            [score.shape[-2:] for score in cls_scores],
            dtype=cls_scores[0].dtype, device=cls_scores[0].device)
        boxes, scores, levels = [], [], []
        for level, (cls_score, bbox_pred, prior) in enumerate(
                zip(cls_scores, bbox_preds, priors)):
            batch = cls_score.shape[0]
            logits = cls_score.permute(0, 2, 3, 1).reshape(
                batch, -1, head.cls_out_channels)
            if head.use_sigmoid_cls:
                score = logits[..., 0].sigmoid()
            else:
                score = logits.softmax(-1)[..., 0]
            top, index = top_candidates(score, cfg.get('nms_pre', -1))
            deltas = bbox_pred.permute(0, 2, 3, 1).reshape(batch, -1, 4)
            deltas = deltas.gather(1, index[..., None].expand(-1, -1, 4))
            decoded = head.bbox_coder.decode(prior[index].reshape(-1, 4),
                                             deltas.reshape(-1, 4))
            boxes.append(decoded.reshape(batch, -1, 4))
            scores.append(top)
            levels.append(torch.full_like(index[0], level))
        boxes = clip_to_image(torch.cat(boxes, 1), image_size)
        scores, levels = torch.cat(scores, 1), torch.cat(levels)
        if cfg.get('min_bbox_size', -1) >= 0:
            size = boxes[..., 2:] - boxes[..., :2]
            scores = torch.where((size > cfg.min_bbox_size).all(-1), scores,
                                 INVALID)
        level_ids = torch.arange(len(cls_scores), device=scores.device)
        level_scores = torch.where(
            levels[None, None, :] == level_ids[None, :, None],
            scores[:, None, :], INVALID)
        kept = nms(boxes, level_scores, cfg.max_per_img,
                   cfg.nms.iou_threshold, INVALID / 2)
        b, c, i = kept.unbind(1)
        kept_scores = torch.full_like(scores, INVALID).index_put(
            (b, i), level_scores[b, c, i])
        top, index = kept_scores.topk(
            torch.sym_min(kept_scores.shape[1], cfg.max_per_img), dim=1)
        proposals = boxes.gather(1, index[..., None].expand(-1, -1, 4))
        return proposals, top > INVALID / 2

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
        class_boxes = box_grid.transpose(1, 2)  # (N, C, P, 4)
        class_scores = score_grid.transpose(1, 2)  # (N, C, P)
        kept = nms(class_boxes.reshape(-1, num_proposals, 4),
                   class_scores.reshape(-1, 1, num_proposals),
                   cfg.max_per_img, cfg.nms.iou_threshold, cfg.score_thr)
        image_class, _, p = kept.unbind(1)
        n, c = image_class // num_classes, image_class % num_classes
        kept_scores = torch.full_like(class_scores, INVALID).index_put(
            (n, c, p), class_scores[n, c, p])
        # Top-k over (class, proposal) pairs plus K padding entries.
        k = cfg.max_per_img
        top, index = torch.cat([
            kept_scores.reshape(batch, -1),
            kept_scores.new_full((batch, k), INVALID)], 1).topk(k, dim=1)
        flat_boxes = torch.cat([class_boxes.reshape(batch, -1, 4),
                                class_boxes.new_zeros((batch, k, 4))], 1)
        top_boxes = flat_boxes.gather(1, index[..., None].expand(-1, -1, 4))
        is_valid = top > INVALID / 2
        dets = torch.where(is_valid[..., None],
                           torch.cat([top_boxes, top[..., None]], -1), 0.)
        labels = torch.where(is_valid, index // num_proposals, -1)
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
