"""An equal post-processing load for whole-detector timings.

With random weights, how many (prior, class) scores pass a dense head's
``score_thr`` depends on chance, and box decoding and NMS cost follows that
count: two models with the same ``test_cfg`` can differ twofold in
post-processing (docs/benchmarks.md). Setting each model's ``score_thr``
just below its K-th best score on the timed image gives every model the
same K candidates for decoding and NMS (more where scores tie).

RTMDet-Ins then computes one mask per final detection (dynamic
convolutions on the stride-8 prototypes, the resize to the image), so its
time also follows how many detections survive NMS: :func:`set_mask_count`
gives every instance-segmentation model the same number.
"""
import torch

from mmevit.errors import ConfigError


def has_dense_head(model):
    """Whether ``model`` is a detector with a dense ``bbox_head`` (scores
    per prior and class), the kind :func:`set_candidate_count` sets."""
    head = getattr(model, 'bbox_head', None)
    return head is not None and hasattr(head, 'cls_out_channels')


def candidate_scores(model, inputs):
    """All (prior, class) scores of ``model``'s dense head on ``inputs``
    (sigmoid or softmax without the background, as its post-processing
    takes them), flattened."""
    head = getattr(model, 'bbox_head', None)
    if not has_dense_head(model):
        raise ConfigError(
            f'--candidates needs a detector with a dense bbox_head; '
            f'{type(model).__name__} has none (two-stage detectors and '
            'segmentors are timed with their test_cfg)')
    with torch.no_grad():
        cls_scores = head(model.extract_feat(inputs))[0]
    logits = torch.cat([score.permute(0, 2, 3, 1).reshape(
        -1, head.cls_out_channels) for score in cls_scores])
    scores = logits.sigmoid() if head.use_sigmoid_cls else \
        logits.softmax(-1)[:, :-1]
    return scores.flatten()


def set_candidate_count(model, inputs, candidates):
    """Set ``model``'s ``bbox_head.test_cfg.score_thr`` just below its
    ``candidates``-th best score on ``inputs`` (one image; mmdet keeps
    ``score > score_thr``), in place.

    Returns:
        tuple[float, int]: The threshold and the number of scores over it:
        ``candidates``, more where scores tie with the last one (random
        heads give equal scores at many priors).
    """
    scores = candidate_scores(model, inputs)
    if candidates >= scores.numel():
        threshold = torch.tensor(-1.)
    else:
        last = scores.topk(candidates).values[-1]
        threshold = torch.nextafter(last, last.new_tensor(-1.))
    model.bbox_head.test_cfg.score_thr = float(threshold)
    return float(threshold), int((scores > threshold).sum())


def has_instance_masks(model):
    """Whether ``model``'s dense head also predicts one mask per detection
    (RTMDet-Ins: its ``test_cfg`` has ``mask_thr_binary``)."""
    return has_dense_head(model) and \
        'mask_thr_binary' in (model.bbox_head.test_cfg or {})


def set_mask_count(model, inputs, data_samples, masks):
    """Set ``model``'s ``bbox_head.test_cfg.max_per_img`` to ``masks`` (in
    place) and check that ``model.predict`` then keeps exactly that many
    instances on ``inputs`` (one preprocessed batch).

    Raises:
        ConfigError: Fewer detections survive NMS: give the model more
            candidates or ask for fewer masks.
    """
    model.bbox_head.test_cfg.max_per_img = masks
    with torch.no_grad():
        results = model.predict(inputs, data_samples)
    found = min(len(result.pred_instances) for result in results)
    if found < masks:
        raise ConfigError(
            f'{type(model.backbone).__name__} keeps {found} detections after NMS, '
            f'fewer than the {masks} masks asked for: give it more candidates')
    return found
