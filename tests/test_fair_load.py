"""The equal post-processing load of the whole-detector benchmarks
(mmevit/tools/benchmark/fair_load.py)."""
import os.path as osp

import pytest
import torch

from mmevit.errors import ConfigError
from mmevit.tools import build_model
from mmevit.tools.benchmark.fair_load import set_candidate_count

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RTMDET_TOY = osp.join(ROOT, 'configs/toy/rtmdet_efficientvit_m0_toy.py')
FPN_TOY = osp.join(ROOT, 'configs/toy/fpn_efficientvit_m0_toy_ade20k.py')


@pytest.mark.parametrize('candidates', [1, 37, 500])
def test_score_thr_leaves_the_asked_number_of_candidates(candidates):
    """mmdet's own candidate filter (``filter_scores_and_topk``, per level,
    as ``BaseDenseHead`` runs it before NMS) keeps the asked number of
    (prior, class) scores, or a few more where scores tie with the last
    one."""
    from mmdet.models.utils import filter_scores_and_topk
    torch.manual_seed(0)
    _, _, model = build_model(RTMDET_TOY)
    model.init_weights()
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    threshold, count = set_candidate_count(model, x, candidates)
    head = model.bbox_head
    with torch.no_grad():
        cls_scores = head(model.extract_feat(x))[0]
    kept = 0
    for level in cls_scores:
        scores = level[0].permute(1, 2, 0).reshape(
            -1, head.cls_out_channels).sigmoid()
        kept += len(filter_scores_and_topk(
            scores, head.test_cfg.score_thr, head.test_cfg.nms_pre)[0])
    assert head.test_cfg.score_thr == threshold
    assert kept == count
    assert candidates <= count <= 1.2 * candidates + 10


def test_a_model_without_dense_head_is_one_error():
    _, _, model = build_model(FPN_TOY)
    with pytest.raises(ConfigError, match='needs a detector with a dense '
                       'bbox_head; EncoderDecoder has none'):
        set_candidate_count(model, torch.randn(1, 3, 64, 64), 10)
