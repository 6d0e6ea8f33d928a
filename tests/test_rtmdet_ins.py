"""EfficientViT RTMDet-Ins configs on mmdet's real RTMDet-Ins parts (CPU,
small): strides and widths, the recipe, a short toy training with masks."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import Runner

from mmevit.models import EfficientViT
from tests.detection_data import fake_batch, mean_loss, short_seeded_run, toy_options
from tests.helpers import ROOT, load_tool, run_tool
from tests.test_rtmdet import (
    TrainingSetLossAt,
    assert_only_backbone_settings_differ,
    build,
    mmdet_rtmdet_config,
)

INS_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'rtmdet-ins_efficientvit_m*_coco.py')))
INS_TOY = osp.join(ROOT, 'configs/toy/rtmdet-ins_efficientvit_m0_toy.py')
TINY_INS_TOY = osp.join(ROOT, 'configs/toy/rtmdet-ins_tiny_toy.py')
#: mmdet's recipe of each arch: tiny's widths for M0-M2, s's for M3-M5.
RECIPES = {'m0': 'tiny', 'm1': 'tiny', 'm2': 'tiny', 'm3': 's', 'm4': 's', 'm5': 's'}

register_all_modules(init_default_scope=True)


def mmdet_config(recipe):
    return mmdet_rtmdet_config(f'rtmdet-ins_{recipe}_8xb32-300e_coco.py')


def test_one_config_per_arch():
    assert [osp.basename(p) for p in INS_CONFIGS] == [
        f'rtmdet-ins_efficientvit_{a}_coco.py' for a in sorted(EfficientViT.arch_zoo)]


@pytest.mark.parametrize('path', INS_CONFIGS, ids=osp.basename)
def test_neck_gives_the_head_its_strides_widths_and_prototypes(path):
    cfg, model = build(path)
    arch = cfg.model.backbone.arch
    assert cfg.model.neck.in_channels == EfficientViT.arch_zoo[arch]['embed_dims']
    assert cfg.model.bbox_head.in_channels == mmdet_config(
        RECIPES[arch]).model.bbox_head.in_channels
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 96, 128))
        *_, prototypes = model.bbox_head(feats)
    assert [s[0] for s in model.bbox_head.prior_generator.strides] == [8, 16, 32]
    assert [tuple(f.shape[1:]) for f in feats] == [
        (cfg.model.bbox_head.in_channels, 96 // s, 128 // s) for s in (8, 16, 32)]
    assert prototypes.shape == (1, model.bbox_head.num_prototypes, 12, 16)  # stride 8


@pytest.mark.parametrize('arch', ['m0', 'm3'])
def test_only_backbone_dependent_settings_differ_from_mmdet_rtmdet_ins(arch):
    ours, _ = assert_only_backbone_settings_differ(
        Config.fromfile(osp.join(ROOT, f'configs/rtmdet-ins_efficientvit_{arch}_coco.py')),
        mmdet_config(RECIPES[arch]), keys=('val_evaluator', ))
    assert ours['model']['test_cfg']['mask_thr_binary'] == 0.5


@pytest.mark.parametrize('path', [INS_TOY, TINY_INS_TOY], ids=osp.basename)
def test_toy_config_predicts_masks(path):
    _, model = build(path)
    model.train()
    data = model.data_preprocessor(fake_batch(), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(model.parse_losses(losses)[0]) and 'loss_mask' in losses
    model.eval()
    with torch.no_grad():
        [result] = model(**model.data_preprocessor(fake_batch(), False), mode='predict')[:1]
    instances = result.pred_instances
    assert instances.masks.shape[1:] == (128, 160) and instances.masks.dtype == torch.bool
    assert set(instances.labels.tolist()) <= {0, 1, 2}


def test_short_toy_training_lowers_the_loss(toy_coco, tmp_path):
    # As RTMDet's (tests/test_rtmdet.py): the loss over the same 8 training
    # images (128 px, batch 2, polygon masks) after 5 and after 25 iterations.
    cfg = Config.fromfile(INS_TOY)
    cfg.merge_from_dict(toy_options(toy_coco))
    for step in cfg.train_dataloader.dataset.pipeline:
        if step.type in ('Resize', 'Pad'):
            step.update({'scale' if step.type == 'Resize' else 'size': (128, 128)})
    short_seeded_run(cfg, 25, tmp_path)
    runner = Runner.from_cfg(cfg)
    training_set = list(runner.train_dataloader)
    assert len(training_set) == 4
    recorder = TrainingSetLossAt(training_set, 5)
    runner.register_hook(recorder)
    runner.train()
    assert mean_loss(runner.model, training_set) < 0.9 * recorder.loss


def test_benchmark_gives_every_instance_model_the_same_candidates_and_masks(tmp_path):
    """The fair whole-model timing as docs/rtmdet_ins.md runs it: both toy
    RTMDet-Ins models get the same candidates and end with the same number
    of masks, in the rows the table and JSON report."""
    import json
    out = tmp_path / 'rows.json'
    run_tool('tools/analysis_tools/benchmark.py', INS_TOY, TINY_INS_TOY,
             '--shape', '128', '--candidates', '300', '--masks', '7',
             '--warmup', '0', '--repeats', '1', '--json', out)
    rows = json.loads(out.read_text())['rows']
    assert len(rows) == 2
    assert all(row['candidates'] >= 300 and row['masks'] == 7 for row in rows)


def test_benchmark_masks_without_candidates_is_one_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool('analysis_tools/benchmark').parse_args([INS_TOY, '--masks', '7'])
    assert exit_info.value.code == 2
    assert '--masks needs --candidates' in capsys.readouterr().err


def test_set_mask_count_gives_every_model_the_same_masks():
    from mmevit.errors import ConfigError
    from mmevit.tools.benchmark.fair_load import set_mask_count
    for path in (INS_TOY, TINY_INS_TOY):
        torch.manual_seed(0)
        _, model = build(path, **{'model.test_cfg.score_thr': -1.})
        data = model.eval().data_preprocessor(fake_batch(), False)
        assert set_mask_count(model, data['inputs'], data['data_samples'], 7) == 7
        with torch.no_grad():
            [result] = model.predict(data['inputs'], data['data_samples'])[:1]
        assert len(result.pred_instances.masks) == 7
        with pytest.raises(ConfigError, match='fewer than the 100000 masks'):
            set_mask_count(model, data['inputs'], data['data_samples'], 100000)
