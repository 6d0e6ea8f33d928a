"""EfficientViT RTMDet configs on mmdet's real RTMDet parts (CPU, small)."""
import glob
import os.path as osp

import mmdet
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmevit.models import EfficientViT
from mmevit.tools import replace_sync_bn
from tests.detection_data import fake_batch, mean_loss, short_seeded_run, toy_options
from tests.helpers import load_tool, needs_exporter, randomize_weights

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RTMDET_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs',
                                           'rtmdet_efficientvit_m*_coco.py')))
M0_TOY = osp.join(ROOT, 'configs/toy/rtmdet_efficientvit_m0_toy.py')
TINY_TOY = osp.join(ROOT, 'configs/toy/rtmdet_tiny_toy.py')

register_all_modules(init_default_scope=True)


def build(path, **options):
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    replace_sync_bn(cfg.model)
    return cfg, MODELS.build(cfg.model)


def test_one_config_per_arch():
    names = [osp.basename(p) for p in RTMDET_CONFIGS]
    assert names == [f'rtmdet_efficientvit_{a}_coco.py'
                     for a in sorted(EfficientViT.arch_zoo)]


@pytest.mark.parametrize('path', RTMDET_CONFIGS, ids=osp.basename)
def test_neck_gives_the_head_its_strides_and_widths(path):
    cfg, model = build(path)
    dims = EfficientViT.arch_zoo[cfg.model.backbone.arch]['embed_dims']
    assert cfg.model.neck.in_channels == dims
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 96, 128))
    strides = model.bbox_head.prior_generator.strides
    assert [s[0] for s in strides] == [8, 16, 32]
    assert [tuple(f.shape[1:]) for f in feats] == [
        (cfg.model.bbox_head.in_channels, 96 // s, 128 // s)
        for s in (8, 16, 32)]


def without_scope(node):
    """A config node as plain data, without the ``_scope_`` keys that
    inheriting through ``mmdet::`` adds."""
    if isinstance(node, dict):
        return {k: without_scope(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [without_scope(v) for v in node]
    return node


def mmdet_rtmdet_config(name):
    """mmdet's own ``configs/rtmdet/NAME`` as installed."""
    return Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim',
                                    'configs', 'rtmdet', name))


def assert_only_backbone_settings_differ(ours, base, keys=()):
    """``ours`` keeps ``base``'s (mmdet recipe's) head, train and test
    settings, data, schedule, hooks and optimizer, and the top-level
    ``keys``; it adds no decay on the attention bias tables and
    auto_scale_lr at the recipe's total batch (8 GPUs x 32; the base keeps
    schedule_1x's 16). Returns both as plain data."""
    ours, base = without_scope(ours.to_dict()), without_scope(base.to_dict())
    for key in ('bbox_head', 'train_cfg', 'test_cfg'):
        assert ours['model'][key] == base['model'][key], key
    for key in ('train_dataloader', 'val_dataloader', 'train_cfg',
                'param_scheduler', 'custom_hooks', *keys):
        assert ours[key] == base[key], key
    assert ours['auto_scale_lr'] == dict(enable=False, base_batch_size=8 * 32)
    ours_optim, base_optim = ours['optim_wrapper'], base['optim_wrapper']
    assert ours_optim['optimizer'] == base_optim['optimizer']
    custom_keys = ours_optim['paramwise_cfg'].pop('custom_keys')
    assert ours_optim['paramwise_cfg'] == base_optim['paramwise_cfg']
    assert custom_keys == {'attention_biases': dict(decay_mult=0.)}
    return ours, base


def test_only_backbone_dependent_settings_differ_from_mmdet_rtmdet():
    assert_only_backbone_settings_differ(
        Config.fromfile(RTMDET_CONFIGS[0]),
        mmdet_rtmdet_config('rtmdet_tiny_8xb32-300e_coco.py'))



@pytest.mark.parametrize('path', [M0_TOY, TINY_TOY], ids=osp.basename)
def test_toy_config_runs_train_and_test_steps(path):
    _, model = build(path)
    model.train()
    data = model.data_preprocessor(fake_batch(with_masks=False), True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        [result] = model(**model.data_preprocessor(fake_batch(with_masks=False), False),
                         mode='predict')[:1]
    assert result.pred_instances.bboxes.shape[1] == 4
    assert set(result.pred_instances.labels.tolist()) <= {0, 1, 2}

class TrainingSetLossAt(Hook):
    """Records the loss over the fixed training set after ``iters``
    iterations."""

    def __init__(self, batches, iters):
        self.batches = batches
        self.iters = iters
        self.loss = None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.iters:
            self.loss = mean_loss(runner.model, self.batches)


def test_short_toy_training_lowers_the_loss(toy_coco, tmp_path):
    # RTMDet's targets follow its predictions (dynamic soft labels, IoU-scaled
    # classification targets), so its loss rises over the first iterations
    # of a from-scratch run before it falls: compare the loss over the same
    # 8 training images (128 px, batch 2) after 10 and after 30 iterations
    # (seeded: 0.66 of it on torch 2.13, 0.64 on torch 2.1, Intel Xeon).
    cfg = Config.fromfile(M0_TOY)
    cfg.merge_from_dict(toy_options(toy_coco))
    for step in cfg.train_dataloader.dataset.pipeline:
        if step.type in ('Resize', 'Pad'):
            step.update({'scale' if step.type == 'Resize' else 'size':
                         (128, 128)})
    # Seeded: unseeded runs (160 px, 60 iterations) ended at 0.79-0.94 of
    # the loss at iteration 10, too close to any fixed threshold.
    short_seeded_run(cfg, 30, tmp_path)
    runner = Runner.from_cfg(cfg)
    training_set = list(runner.train_dataloader)
    assert len(training_set) == 4  # 8 images, batch 2
    assert training_set[0]['inputs'][0].shape[1:] == (128, 128)
    recorder = TrainingSetLossAt(training_set, 10)
    runner.register_hook(recorder)
    runner.train()
    after = mean_loss(runner.model, training_set)
    assert after < 0.9 * recorder.loss


def test_neck_in_channels_of_another_arch_name_the_expected_channels():
    # Without the tools' build-time check (tests/test_safety.py), the neck
    # itself stops at the first forward with both channel lists.
    _, model = build(RTMDET_CONFIGS[0], **{'model.backbone.arch': 'm2'})
    with pytest.raises(ValueError, match=r'channels \[128, 192, 224\], but '
                       r'in_channels=\[64, 128, 192\]'):
        model.eval()(torch.rand(1, 3, 64, 64), mode='tensor')


def test_benchmark_times_detectors_at_an_equal_post_processing_load(capsys):
    """The fair real-time mode of tools/analysis_tools/benchmark.py: every
    dense detector gets the same K candidates, ratios refer to the first."""
    tool = load_tool('analysis_tools/benchmark')
    args = tool.parse_args([TINY_TOY, M0_TOY, '--shape', '64x96', '--parts',
                            'network', 'model', '--candidates', '5',
                            '--reference', '0', '--warmup', '0',
                            '--repeats', '1'])
    rows, _, _ = tool.run(args)
    assert [(r['model'], r['part']) for r in rows] == [
        ('rtmdet_tiny_toy', 'network'), ('rtmdet_tiny_toy', 'model'),
        ('rtmdet_efficientvit_m0_toy', 'network'),
        ('rtmdet_efficientvit_m0_toy', 'model')]
    assert rows[0]['x_reference'] == rows[1]['x_reference'] == 1.0
    assert rows[3]['x_reference'] == pytest.approx(
        rows[1]['latency_ms'] / rows[3]['latency_ms'])
    for row in rows[1::2]:  # at least K candidates (ties may add some)
        assert row['candidates'] >= 5
    out = capsys.readouterr().out
    assert 'rtmdet_efficientvit_m0_toy: score_thr' in out
    # independent of timing: the M0 model is the smaller one
    assert rows[2]['gflop'] < rows[0]['gflop']
    assert rows[2]['params_m'] < rows[0]['params_m']


@needs_exporter
def test_exported_onnx_matches_pytorch_predict(tmp_path):
    # The deploy exporter on the M0 RTMDet, traced at 160x192 and checked at
    # a size that is neither the traced one nor a window multiple. Seeded
    # random values in every weight and BN statistic: with the initial
    # weights many scores tie and NMS may order them either way.
    from mmdet.structures import DetDataSample

    from mmevit.deploy import export_onnx, export_wrapper
    from mmevit.deploy.runtime import OnnxSession
    from mmevit.tools import build_model
    cfg, task, model = build_model(RTMDET_CONFIGS[0])
    randomize_weights(model)
    path = str(tmp_path / 'rtmdet_m0.onnx')
    export_onnx(export_wrapper(task, model), path, task, shape=(160, 192))
    height, width = 131, 97
    x = torch.randn(1, 3, height, width,
                    generator=torch.Generator().manual_seed(1))
    meta = dict(img_shape=(height, width), ori_shape=(height, width),
                pad_shape=(height, width), batch_input_shape=(height, width),
                scale_factor=(1., 1.))
    with torch.no_grad():
        [expected] = model.predict(x, [DetDataSample(metainfo=meta)])
    dets, labels = OnnxSession(path, task)(x)
    reference = expected.pred_instances
    count = len(reference.scores)
    assert count > 10  # NMS and top-k have work to do
    assert torch.equal(labels[0, :count], reference.labels)
    assert (labels[0, count:] == -1).all()
    torch.testing.assert_close(dets[0, :count, :4], reference.bboxes,
                               rtol=0, atol=1e-3 * height)
    torch.testing.assert_close(dets[0, :count, 4], reference.scores,
                               rtol=0, atol=1e-5)
