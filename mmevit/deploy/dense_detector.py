"""Export wrapper of a one-stage mmdet detector with a dense head.

Re-does ``BaseDenseHead.predict_by_feat`` (per-level top-k, box decoding,
score threshold, score factors, clipping, per-class NMS, ``max_per_img``)
batched and with every size taken from tensors, so that the exported graph
stays dynamic. NMS is :func:`mmevit.deploy.ops.nms` (ONNX
``NonMaxSuppression``).

Inputs: ``input`` (N, 3, H, W), the normalised (and padded) batch, and
``image_size`` (N, 2) int64, each image's height and width without the
padding (mmdet's ``img_shape``), to which boxes are clipped. With
``test_cfg.min_bbox_size > 0`` also ``scale_factor`` (N, 2) float64, each
image's resize factor (mmdet's ``scale_factor``, width and height): as
mmdet's ``_bbox_post_process`` (``rescale=True``), the graph drops the boxes
whose width or height in the original image (input pixels times the
reciprocal factor, which mmdet computes in double precision) is not larger
than ``min_bbox_size``; ones filter in input pixels (mmdet's
``rescale=False``).

Outputs, padded to ``K = test_cfg.max_per_img`` detections per image:
``dets`` (N, K, 5) float ``x1, y1, x2, y2, score`` in input-image pixels,
by decreasing score, padding rows all zeros; ``labels`` (N, K) int64 class
indices, padding -1.
"""
import torch
from torch import nn

from .ops import nms

INVALID = -1.0  # score of dropped candidates; valid scores are >= 0


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
    ``mmdet.models.utils.filter_scores_and_topk`` (dense heads, which
    applies ``score_thr`` first; the caller applies it after) and of
    ``RPNHead._predict_by_feat_single``, batched.

    Always exactly ``nms_pre`` of them: below that, the rest are dropped
    candidates (score ``INVALID``, index L - 1). A fixed count keeps the
    graph's shapes simple; ``min(L, nms_pre)`` shapes made tracing several
    times slower.
    """
    num_scores = scores.shape[1]
    if nms_pre <= 0:
        return scores.topk(num_scores, dim=1)
    padding = scores.new_full((scores.shape[0], nms_pre), INVALID)
    top, index = torch.cat([scores, padding], 1).topk(nms_pre, dim=1)
    return top, index.clamp(max=num_scores - 1)


#: The dense heads the exporter supports, by class name: each uses
#: ``BaseDenseHead.predict_by_feat`` unchanged and is tested against it
#: (tests/test_deploy.py, test_rtmdet.py).
SUPPORTED_HEADS = ('RetinaHead', 'ATSSHead', 'FCOSHead', 'RTMDetHead',
                   'RTMDetSepBNHead')
#: The keys of a ``test_cfg.nms`` the exported NMS computes as mmdet's
#: ``batched_nms`` does (``split_thr`` only changes its algorithm).
NMS_KEYS = ('type', 'iou_threshold', 'split_thr', 'class_agnostic')


def dense_problem(detector):
    """What :class:`DenseDetectorExport` cannot export in ``detector``.

    Returns:
        str | None: The unsupported head or setting, or None.
    """
    from mmdet.models import dense_heads
    head = getattr(detector, 'bbox_head', None)
    if head is None or type(head) not in tuple(
            getattr(dense_heads, name) for name in SUPPORTED_HEADS):
        return type(head or detector).__name__
    return coder_problem(head) or nms_problem(type(head).__name__, 'test_cfg',
                                              head.test_cfg)


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


class DenseDetectorExport(nn.Module):
    """Normalised image batch -> ``(dets, labels)``; see the module doc.

    Args:
        detector (nn.Module): An mmdet ``SingleStageDetector`` in eval mode
            in which :func:`dense_problem` finds nothing.
    """

    output_names = ('dets', 'labels')

    def __init__(self, detector):
        super().__init__()
        self.detector = detector
        self.head = detector.bbox_head
        self.num_classes = self.head.num_classes
        cfg = self.head.test_cfg
        self.nms_pre = cfg.get('nms_pre', -1)
        self.score_thr = cfg.get('score_thr', 0)
        self.min_bbox_size = cfg.get('min_bbox_size', -1)
        self.iou_threshold = cfg.nms.iou_threshold
        self.max_per_img = cfg.max_per_img

    @property
    def input_names(self):
        """``input``, ``image_size`` and, where the size filter depends on
        the resize (``min_bbox_size > 0``), ``scale_factor``."""
        names = ('input', 'image_size')
        return names + ('scale_factor', ) if self.min_bbox_size > 0 else names

    def forward(self, x, image_size, scale_factor=None):
        outs = self.head(self.detector.extract_feat(x))
        score_factors = outs[2] if len(outs) > 2 else [None] * len(outs[0])
        priors = self.head.prior_generator.grid_priors(
            [score.shape[-2:] for score in outs[0]], dtype=x.dtype,
            device=x.device)
        levels = [self._level_candidates(*level)
                  for level in zip(outs[0], outs[1], score_factors, priors)]
        boxes, scores, labels = (torch.cat(parts, 1) for parts in zip(*levels))
        boxes = clip_to_image(boxes, image_size)
        if self.min_bbox_size >= 0:
            scores = torch.where(self._big_enough(boxes, scale_factor),
                                 scores, INVALID)
        return self._per_class_nms(boxes, scores, labels)

    def _big_enough(self, boxes, scale_factor):
        """(N, B) whether the boxes are wider and higher than
        ``min_bbox_size`` in the original image: the filter of
        ``BaseDenseHead._bbox_post_process``, which checks them after
        rescaling (``scale_factor`` (N, 2) width and height factors; None
        for input pixels)."""
        if scale_factor is not None:
            # mmdet's scale_boxes(boxes, [1 / s for s in scale_factor]): the
            # reciprocal in double precision, rounded to the boxes' dtype
            inverse = (1 / scale_factor.double()).to(boxes.dtype)
            boxes = boxes * inverse.repeat(1, 2)[:, None, :]
        size = boxes[..., 2:] - boxes[..., :2]
        return (size > self.min_bbox_size).all(-1)

    def _level_candidates(self, cls_score, bbox_pred, score_factor, priors):
        """Top ``nms_pre`` (prior, class) pairs of one level, decoded with
        the head's own coder: ``BaseDenseHead._predict_by_feat_single``
        for all images at once."""
        batch = cls_score.shape[0]
        logits = cls_score.permute(0, 2, 3, 1).reshape(
            batch, -1, self.head.cls_out_channels)
        if self.head.use_sigmoid_cls:
            scores = logits.sigmoid()
        else:
            scores = logits.softmax(-1)[..., :-1]
        num_classes = scores.shape[-1]
        top_scores, index = top_candidates(scores.reshape(batch, -1),
                                           self.nms_pre)
        prior_index = index // num_classes
        labels = index % num_classes
        box_dim = self.head.bbox_coder.encode_size
        deltas = bbox_pred.permute(0, 2, 3, 1).reshape(batch, -1, box_dim)
        deltas = deltas.gather(
            1, prior_index[..., None].expand(-1, -1, box_dim))
        priors = priors[prior_index]
        boxes = self.head.bbox_coder.decode(
            priors.reshape(-1, priors.shape[-1]), deltas.reshape(-1, box_dim))
        boxes = boxes.reshape(batch, -1, 4)
        keep = top_scores > self.score_thr
        if score_factor is not None:
            factor = score_factor.permute(0, 2, 3, 1).reshape(batch, -1)
            top_scores = top_scores * factor.sigmoid().gather(1, prior_index)
        return boxes, torch.where(keep, top_scores, INVALID), labels

    def _per_class_nms(self, boxes, scores, labels):
        """NMS per class, the ``max_per_img`` best: ``batched_nms`` (mmcv)
        and the cut of ``BaseDenseHead._bbox_post_process``, padded."""
        num_classes = self.head.num_classes
        batch, num_boxes = scores.shape
        classes = torch.arange(num_classes, device=scores.device)
        class_scores = torch.where(
            labels[:, None, :] == classes[None, :, None], scores[:, None, :],
            INVALID)
        kept = nms(boxes, class_scores, self.max_per_img, self.iou_threshold,
                   INVALID / 2)
        b, c, i = kept.unbind(1)
        kept_scores = torch.full_like(class_scores, INVALID).index_put(
            (b, c, i), class_scores[b, c, i])
        # Top-k over (class, box) pairs plus K padding entries of class -1.
        padding = kept_scores.new_full((batch, self.max_per_img), INVALID)
        top, index = torch.cat([kept_scores.reshape(batch, -1), padding],
                               1).topk(self.max_per_img, dim=1)
        box_ids = torch.arange(num_boxes, device=scores.device)
        pair_box = torch.cat([
            box_ids[None, :].expand(num_classes, -1).reshape(-1),
            box_ids.new_zeros(self.max_per_img)])
        pair_class = torch.cat([
            classes[:, None].expand(-1, num_boxes).reshape(-1),
            classes.new_full((self.max_per_img, ), -1)])
        top_boxes = boxes.gather(
            1, pair_box[index][..., None].expand(-1, -1, 4))
        dets = torch.cat([top_boxes, top[..., None]], -1)
        # Dropped pairs tie with the padding at INVALID: whichever top-k
        # picks, those rows are padding (zeros, label -1).
        valid = top > INVALID / 2
        dets = torch.where(valid[..., None], dets, 0.)
        return dets, torch.where(valid, pair_class[index], -1)
