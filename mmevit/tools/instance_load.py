"""An equal mask load for whole RTMDet-Ins timings.

RTMDet-Ins computes one mask (dynamic convolutions on the stride-8
prototypes, then the resize to the image) per final detection, so its
post-processing time follows how many detections survive NMS, which with
random weights differs from model to model. After the candidate count is
equalised (``tools/analysis_tools/fair_load.py``'s ``set_candidate_count``,
which reads the class scores RTMDet-Ins's head gives first as every dense
head does), :func:`set_mask_count` makes every model end with the same
number of masks.
"""
import torch

from ..errors import ConfigError


def set_mask_count(model, inputs, data_samples, masks):
    """Set ``model``'s ``bbox_head.test_cfg.max_per_img`` to ``masks`` (in
    place) and check that ``model.predict`` then gives exactly that many
    instances on ``inputs`` (one batch through its data preprocessor).

    Raises:
        ConfigError: Fewer detections survive NMS: give the model more
            candidates (a lower ``score_thr``) or ask for fewer masks.
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
