"""The post-processing core of the exported detectors: the heads it
handles, clipping, the per-level top-k, per-class NMS with the best K kept
and padded to the rows of :mod:`.contract`. Every size comes from tensors,
so the exported graph stays dynamic; NMS is :func:`.ops.nms` (ONNX
``NonMaxSuppression``).
"""
import torch

from .ops import nms

INVALID = -1.0  # score of dropped candidates; valid scores are >= 0

#: The mmdet heads the core post-processes as mmdet does, by class name,
#: for each stage that uses it: the dense heads keep
#: ``BaseDenseHead.predict_by_feat``, RTMDet-Ins adds its masks to it, the
#: RPN and the RoI box heads (``BBoxHead.predict_by_feat``) of a two-stage
#: detector. Each is tested against mmdet's ``predict``.
HEADS = {'dense': ('RetinaHead', 'ATSSHead', 'FCOSHead', 'RTMDetHead', 'RTMDetSepBNHead'),
         'instance': ('RTMDetInsHead', 'RTMDetInsSepBNHead'),
         'rpn': ('RPNHead', ),
         'roi': ('BBoxHead', 'ConvFCBBoxHead', 'Shared2FCBBoxHead', 'Shared4Conv1FCBBoxHead')}
#: The keys of a ``test_cfg.nms`` the exported NMS computes as mmdet's
#: ``batched_nms`` does (``split_thr`` only changes its algorithm).
NMS_KEYS = ('type', 'iou_threshold', 'split_thr', 'class_agnostic')


def head_kind(head):
    """The key of :data:`HEADS` that lists ``head``'s exact mmdet class
    (subclasses may compute something else), or None."""
    from mmdet import models
    return next((kind for kind, names in HEADS.items() for name in names
                 if type(head) is getattr(models, name)), None)


def coder_problem(head):
    """``head`` with a box coder that does not clip to the image (the
    exported graph always clips, as mmdet's coders do with
    ``clip_border=True``), or None."""
    if getattr(head.bbox_coder, 'clip_border', True):
        return None
    return f'{type(head).__name__} with bbox_coder.clip_border=False'


def nms_problem(owner, key, cfg):
    """What the exported NMS does not compute as mmdet's ``batched_nms``
    with the ``nms`` of ``cfg`` (None when nothing)."""
    nms_cfg = cfg.nms
    if nms_cfg.get('type', 'nms') != 'nms':
        return f'{owner} with {key}.nms.type={nms_cfg.type!r}'
    extra = sorted(set(nms_cfg) - set(NMS_KEYS))
    if extra or nms_cfg.get('class_agnostic', False):
        setting = extra[0] if extra else 'class_agnostic'
        return f'{owner} with {key}.nms.{setting}={nms_cfg[setting]!r}'
    return None


def clip_to_image(boxes, image_size):
    """Clip the ``(N, ..., 4)`` boxes ``x1, y1, x2, y2`` of N images to
    ``[0, width]`` x ``[0, height]`` of each image (``img_shape``, the image
    without the batch padding), per image: mirrors the clamp of mmdet's
    coders (``delta2bbox``, ``distance2bbox``) with ``clip_border=True``
    and ``max_shape=img_shape``, which takes one image.

    Args:
        boxes (Tensor): (N, ..., 4) boxes.
        image_size (Tensor): (N, 2) height and width of each image.
    """
    size = image_size.to(boxes.dtype).reshape(
        -1, *[1] * (boxes.dim() - 2), 2)
    x = torch.minimum(boxes[..., 0::2].clamp(min=0), size[..., 1:])
    y = torch.minimum(boxes[..., 1::2].clamp(min=0), size[..., :1])
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], -1)


def top_candidates(scores, nms_pre):
    """The ``nms_pre`` best of the (N, L) ``scores`` (all L when ``nms_pre``
    <= 0) and their indices, by decreasing score: the top-k of mmdet's
    ``filter_scores_and_topk`` (whose ``score_thr`` the caller applies
    after) and of ``RPNHead._predict_by_feat_single``, batched. Always
    exactly ``nms_pre``, the missing ones dropped candidates (score
    ``INVALID``, index L - 1): ``min(L, nms_pre)`` shapes made tracing
    several times slower.
    """
    num_scores = scores.shape[1]
    if nms_pre <= 0:
        return scores.topk(num_scores, dim=1)
    padding = scores.new_full((scores.shape[0], nms_pre), INVALID)
    top, index = torch.cat([scores, padding], 1).topk(nms_pre, dim=1)
    return top, index.clamp(max=num_scores - 1)


def level_candidates(head, cls_score, bbox_pred, priors, nms_pre):
    """The top ``nms_pre`` (prior, class) pairs of one level of a dense
    head or RPN (:func:`top_candidates`), their boxes decoded with the
    head's own coder: ``_predict_by_feat_single`` of ``BaseDenseHead`` and
    ``RPNHead`` (one class, the foreground) for all images at once.

    Returns:
        tuple[Tensor]: (N, nms_pre) scores, labels and prior indices, and
        (N, nms_pre, 4) boxes.
    """
    batch = cls_score.shape[0]
    logits = cls_score.permute(0, 2, 3, 1).reshape(batch, -1, head.cls_out_channels)
    # softmax: the last class is the background (the RPN's foreground is 0)
    scores = logits.sigmoid() if head.use_sigmoid_cls else logits.softmax(-1)[..., :-1]
    num_classes = scores.shape[-1]
    top, index = top_candidates(scores.reshape(batch, -1), nms_pre)
    prior_index = index // num_classes
    box_dim = head.bbox_coder.encode_size
    deltas = bbox_pred.permute(0, 2, 3, 1).reshape(batch, -1, box_dim).gather(
        1, prior_index[..., None].expand(-1, -1, box_dim))
    priors = priors[prior_index]
    boxes = head.bbox_coder.decode(priors.reshape(-1, priors.shape[-1]),
                                   deltas.reshape(-1, box_dim))
    return top, index % num_classes, prior_index, boxes.reshape(batch, -1, 4)


def big_enough(boxes, min_bbox_size, scale_factor=None):
    """(N, B) whether the boxes are wider and higher than ``min_bbox_size``
    in the original image (``scale_factor`` (N, 2) width and height resize
    factors, as ``BaseDenseHead._bbox_post_process`` checks them after
    rescaling) or in input pixels (None, as the RPN checks them)."""
    if scale_factor is not None:
        # mmdet's scale_boxes(boxes, [1 / s for s in scale_factor]): the
        # reciprocal in double precision, rounded to the boxes' dtype
        inverse = (1 / scale_factor.double()).to(boxes.dtype)
        boxes = boxes * inverse.repeat(1, 2)[:, None, :]
    return (boxes[..., 2:] - boxes[..., :2] > min_bbox_size).all(-1)


def dense_detections(head, outs, image_size, scale_factor=None, rpn=False):
    """The detections of a dense head's per-level ``outs`` (class scores,
    box deltas and, from ATSS/FCOS, score factors), ``head.test_cfg``
    applied: per-level top ``nms_pre`` and ``score_thr``, decoding, score
    factors, clipping to ``image_size``, ``min_bbox_size``, per-class NMS,
    the best ``max_per_img``: ``BaseDenseHead.predict_by_feat`` batched.
    With ``rpn``: ``RPNHead``'s, where the levels are NMS's classes, there
    is no score threshold and sizes are checked in input pixels.

    Returns:
        tuple[Tensor]: ``dets`` and ``labels`` of :func:`nms_top_k` and the
        (N, K) index of each row's prior (all levels, finest first).
    """
    cfg = head.test_cfg
    cls_scores, bbox_preds = outs[:2]
    score_factors = outs[2] if len(outs) > 2 else [None] * len(cls_scores)
    priors = head.prior_generator.grid_priors(
        [score.shape[-2:] for score in cls_scores], dtype=cls_scores[0].dtype,
        device=cls_scores[0].device)
    parts, start = [], 0
    for level, (cls_score, bbox_pred, factor, prior) in enumerate(
            zip(cls_scores, bbox_preds, score_factors, priors)):
        scores, labels, index, boxes = level_candidates(head, cls_score, bbox_pred, prior,
                                                        cfg.get('nms_pre', -1))
        keep = scores > (INVALID / 2 if rpn else cfg.get('score_thr', 0))
        if factor is not None:  # after the threshold, as mmdet
            factor = factor.permute(0, 2, 3, 1).reshape(len(scores), -1).sigmoid()
            scores = scores * factor.gather(1, index)
        labels = torch.full_like(labels, level) if rpn else labels
        parts.append((boxes, torch.where(keep, scores, INVALID), labels, index + start))
        start = start + prior.shape[0]
    boxes, scores, labels, prior_index = (torch.cat(part, 1) for part in zip(*parts))
    boxes = clip_to_image(boxes, image_size)
    if cfg.get('min_bbox_size', -1) >= 0:
        scores = torch.where(big_enough(boxes, cfg.min_bbox_size, None if rpn else scale_factor),
                             scores, INVALID)
    dets, labels, index = nms_top_k(
        boxes, class_scores(scores, labels, len(cls_scores) if rpn else head.num_classes),
        cfg.max_per_img, cfg.nms.iou_threshold)
    return dets, labels, prior_index.gather(1, index)


def class_scores(scores, labels, num_classes):
    """(N, C, B) scores of B boxes with one class each: ``scores`` (N, B)
    in each box's class of ``labels`` ((N, B) or (B, )), ``INVALID`` in
    the others. mmdet's ``batched_nms`` takes boxes this way."""
    classes = torch.arange(num_classes, device=scores.device)[:, None]
    return torch.where(labels[..., None, :] == classes, scores[..., None, :],
                       INVALID)


def nms_top_k(boxes, scores, k, iou_threshold, score_threshold=INVALID / 2):
    """NMS per class, then the ``k`` best (class, box) pairs of each image,
    padded to ``k`` rows: mmcv's ``batched_nms`` and the cut to
    ``max_per_img`` of mmdet's dense heads, RPN and RoI box heads.

    Args:
        boxes (Tensor): (N, B, 4) boxes, or (N, C, B, 4) boxes of each class
            (a RoI head's class-specific regression).
        scores (Tensor): (N, C, B) score of each box in each class; boxes
            scoring at most ``score_threshold`` in a class are not kept in
            it (:func:`class_scores` marks the other classes ``INVALID``).
        k (int): Pairs kept per image (and per class by the NMS).
        iou_threshold (float): NMS IoU threshold.
        score_threshold (float): See ``scores``. Defaults to keeping all
            that are not ``INVALID``.

    Returns:
        tuple[Tensor]: ``dets`` (N, K, 5) and ``labels`` (N, K) as in the
        module doc, and ``box_index`` (N, K) int64, the box of each row
        (in range, arbitrary in padding rows).
    """
    batch, num_classes, num_boxes = scores.shape
    if boxes.dim() == 3:
        b, c, i = nms(boxes, scores, k, iou_threshold, score_threshold).unbind(1)
    else:  # one NMS "image" per (image, class): ONNX NMS shares boxes
        image_class, _, i = nms(
            boxes.reshape(-1, num_boxes, 4), scores.reshape(-1, 1, num_boxes),
            k, iou_threshold, score_threshold).unbind(1)
        b, c = image_class // num_classes, image_class % num_classes
    kept = torch.full_like(scores, INVALID).index_put((b, c, i), scores[b, c, i])
    # Top-k over (class, box) pairs plus k padding entries.
    top, pair = torch.cat([kept.reshape(batch, -1), kept.new_full((batch, k), INVALID)],
                          1).topk(k, dim=1)
    box_index = pair % num_boxes
    if boxes.dim() == 3:
        top_boxes = boxes.gather(1, box_index[..., None].expand(-1, -1, 4))
    else:
        top_boxes = boxes.reshape(batch, -1, 4).gather(1, pair.clamp(
            max=num_classes * num_boxes - 1)[..., None].expand(-1, -1, 4))
    # Dropped pairs tie with the padding at INVALID: whichever top-k picks,
    # those rows are padding (zeros, label -1).
    valid = top > INVALID / 2
    dets = torch.where(valid[..., None], torch.cat([top_boxes, top[..., None]], -1), 0.)
    return dets, torch.where(valid, pair // num_boxes, -1), box_index
