"""Semantic FPN configs, tools and bad data on real mmseg parts (CPU)."""
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.apis import inference_model, init_model
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

from mmevit.checkpoint import load_checkpoint_file
from mmevit.errors import DataError
from mmevit.models import EfficientViT
from mmevit.tools import replace_sync_bn
from mmevit.tools.toy_shapes import make_ade20k_toy
from tests.helpers import (
    failure_lines,
    free_port,
    official_backbone,
    official_loaded_state,
    run_tool,
)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEG_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', 'fpn_efficientvit_*_ade20k*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'toy', 'fpn_efficientvit_*.py')))
ADE_CONFIGS = [p for p in SEG_CONFIGS if osp.basename(osp.dirname(p)) != 'toy']
TOY = osp.join(ROOT, 'configs/toy/fpn_efficientvit_m0_toy_ade20k.py')
WIN14 = osp.join(ROOT, 'configs/fpn_efficientvit_m4_win14_ade20k.py')
TRAIN_ITERS = 30
# One thread per tool process: two busy processes on two cores with two
# OpenMP threads each run many times slower than with one.
TOOL_ENV = dict(OMP_NUM_THREADS='1')

register_all_modules(init_default_scope=False)


def load_config(path, options=None):
    """The config as the tools run it in a single process (BN, not SyncBN)."""
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    replace_sync_bn(cfg.model)
    return cfg


def toy_options(data_root, **extra):
    options = {'train_dataloader.batch_size': 2}
    for split in ('train', 'val', 'test'):
        options[f'{split}_dataloader.dataset.data_root'] = str(data_root)
        options[f'{split}_dataloader.num_workers'] = 0
        options[f'{split}_dataloader.persistent_workers'] = False
    options.update(extra)
    return options


def as_cli(options):
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def label_batch(num_classes, size=(96, 128)):
    """Two images with random labels, as a dataloader yields them."""
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, *size)))
        samples.append(sample)
    return dict(inputs=list(torch.randint(0, 256, (2, 3, *size))),
                data_samples=samples)


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=osp.basename)
def test_config_trains_and_predicts_any_image_size(path):
    cfg = load_config(path, {'model.data_preprocessor.size': (96, 128)})
    resize = next(t for t in cfg.test_pipeline if t['type'] == 'Resize')
    resize['scale'] = (512, 128)  # the config's test steps, small
    model = init_model(cfg, device='cpu')  # mmseg's API; no weights needed
    num_classes = cfg.model.decode_head.num_classes

    model.train()
    losses = model(**model.data_preprocessor(label_batch(num_classes), True),
                   mode='loss')
    assert torch.isfinite(losses['decode.loss_ce'])

    model.eval()
    seen = []
    model.backbone.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].shape[-2:]))
    image = np.random.default_rng(0).integers(0, 256, (200, 333, 3),
                                              dtype=np.uint8)
    with torch.no_grad():
        result = inference_model(model, image)  # the config's test pipeline
    assert tuple(seen[0]) == (128, 256)  # resized to 128 x 213, padded to 64s
    assert result.pred_sem_seg.shape == (200, 333)
    assert result.seg_logits.data.shape == (num_classes, 200, 333)


@pytest.mark.parametrize('path', ADE_CONFIGS, ids=osp.basename)
def test_ade20k_recipe(path):
    cfg = load_config(path)
    assert cfg.model.decode_head.num_classes == 150
    assert cfg.model.neck.in_channels == EfficientViT.arch_zoo[
        cfg.model.backbone.arch]['embed_dims']
    assert cfg.model.decode_head.feature_strides == [4, 8, 16, 32]
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr[
        'base_batch_size'] == 32
    steps = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert steps['RandomCrop']['crop_size'] == (512, 512)
    assert steps['RandomResize']['scale'] == (2048, 512)
    assert 'PhotoMetricDistortion' in steps
    test_steps = {t['type']: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test_steps['Resize']['scale'] == (2048, 512)
    assert cfg.model.data_preprocessor.test_cfg == dict(size_divisor=64)
    assert cfg.train_cfg.max_iters == 40000
    [poly] = cfg.param_scheduler
    assert (poly['type'], poly['power'], poly['eta_min'], poly['end']) == (
        'PolyLR', 0.9, 0., 40000)

    model = init_model(cfg, device='cpu')
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    assert type(optimizer).__name__ == 'AdamW'
    decay = {id(group['params'][0]): group['weight_decay']
             for group in optimizer.param_groups}
    assert {group['lr'] for group in optimizer.param_groups} == {2e-4}
    for name, param in model.named_parameters():
        expected = 0. if 'attention_biases' in name else 1e-4
        assert decay[id(param)] == expected, name


def test_window_14_config_resizes_pretrained_bias_tables(tmp_path):
    """The classification checkpoint's 4x4 last-stage tables become 14x14
    (bicubic); the 7x7 ones of the first stages load unchanged."""
    reference = official_backbone('m4', window_size=(7, 7, 4), seed=3)
    state = reference.state_dict()
    checkpoint = tmp_path / 'efficientvit_m4.pth'
    torch.save({'model': state}, checkpoint)
    cfg = load_config(WIN14, {'model.backbone.init_cfg.checkpoint':
                              str(checkpoint)})
    backbone = MODELS.build(cfg.model).backbone
    backbone.init_weights()

    first = backbone.stages[0].blocks[0].mixer.m.attn.attention_biases
    last = backbone.stages[2].blocks[0].mixer.m.attn.attention_biases
    torch.testing.assert_close(
        first, state['blocks1.0.mixer.m.attn.attention_biases'])
    key = 'blocks3.3.mixer.m.attn.attention_biases'
    assert state[key].shape == (4, 16) and last.shape == (4, 14 * 14)
    expected = official_loaded_state('m4', checkpoint, (7, 7, 14))[key]
    torch.testing.assert_close(last, expected, rtol=0, atol=0)


@pytest.fixture(scope='module')
def toy_ade20k(tmp_path_factory):
    """A tiny ADE20K-layout set (8 train, 4 val images of 64-128 px) whose
    first validation label map also holds label 255 (ignore)."""
    root = tmp_path_factory.mktemp('toy_ade20k')
    info = make_ade20k_toy(str(root), num_train=8, num_val=4, min_size=64,
                           max_size=128, show_progress=False)
    first = sorted(glob.glob(osp.join(info['val_ann_dir'], '*.png')))[0]
    label = cv2.imread(first, cv2.IMREAD_UNCHANGED)
    label[:10, :10] = 255
    cv2.imwrite(first, label)
    return info


@pytest.fixture(scope='module')
def trained_toy(toy_ade20k, tmp_path_factory):
    """tools/train.py: TRAIN_ITERS iterations of the toy config."""
    work_dir = tmp_path_factory.mktemp('fpn_toy')
    options = toy_options(toy_ade20k['data_root'], **{
        'train_cfg.max_iters': TRAIN_ITERS,
        'train_cfg.val_interval': TRAIN_ITERS,
        'default_hooks.checkpoint.interval': TRAIN_ITERS,
        'default_hooks.logger.interval': 1})
    result = run_tool('tools/train.py', TOY, '--work-dir', str(work_dir),
                      *as_cli(options), env=TOOL_ENV)
    checkpoint = work_dir / f'iter_{TRAIN_ITERS}.pth'
    assert checkpoint.is_file()
    return dict(work_dir=work_dir, checkpoint=str(checkpoint),
                options=options, log=result.stdout + result.stderr)


def test_few_iterations_lower_the_loss(trained_toy):
    [scalars] = glob.glob(str(trained_toy['work_dir'] / '*' / 'vis_data' /
                              'scalars.json'))
    with open(scalars) as f:
        losses = [json.loads(line)['loss'] for line in f if '"loss"' in line]
    assert len(losses) == TRAIN_ITERS
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert 'single process: SyncBN replaced by BN' in trained_toy['log']


def metric(log, name):
    """The last value of ``name: 12.34`` in a log."""
    values = re.findall(rf'\b{name}: ([\d.]+)', log)
    assert values, f'{name} not in the output:\n{log[-2000:]}'
    return float(values[-1])


def test_tools_test_prints_miou_and_writes_overlays(trained_toy, toy_ade20k,
                                                    tmp_path):
    preds = tmp_path / 'preds'
    result = run_tool('tools/test.py', TOY, trained_toy['checkpoint'],
                      '--work-dir', str(tmp_path), '--out', str(preds),
                      '--show-dir', str(tmp_path / 'overlays'),
                      *as_cli(trained_toy['options']), env=TOOL_ENV)
    log = result.stdout + result.stderr  # label 255 in the data: ignored
    for name in ('aAcc', 'mIoU', 'mAcc'):
        assert 0 < metric(log, name) <= 100
    assert '| triangle |' in log  # per-class table with the dataset's names

    images = sorted(glob.glob(osp.join(toy_ade20k['val_img_dir'], '*.jpg')))
    overlays = glob.glob(
        str(tmp_path / 'overlays' / 'vis_data' / 'vis_image' / '*.png'))
    assert len(overlays) == len(images)
    for image in images:  # label maps of each image's own (odd) size
        stem = osp.splitext(osp.basename(image))[0]
        pred = cv2.imread(str(preds / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        assert pred.shape == cv2.imread(image).shape[:2]
        assert set(np.unique(pred)) <= {1, 2, 3, 4}  # ADE20K's 1-based ids


def test_dist_train_two_cpu_processes(toy_ade20k, tmp_path):
    """Two gloo processes: SyncBN becomes BN (no CPU SyncBN in torch), and
    DDP finds every neck output used (num_outs=4 builds no stride-64 conv)."""
    options = toy_options(toy_ade20k['data_root'], **{
        'train_dataloader.batch_size': 1, 'train_cfg.max_iters': 3,
        'train_cfg.val_interval': 100,
        'default_hooks.checkpoint.interval': 3})
    # PYTHONFAULTHANDLER: a rank that aborts prints every thread's stack
    env = dict(os.environ, **TOOL_ENV, PYTHON=sys.executable,
               PORT=str(free_port()), PYTHONFAULTHANDLER='1')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', TOY, '2', '--work-dir', str(tmp_path),
         *as_cli(options)], cwd=ROOT, env=env, text=True, capture_output=True,
        timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, failure_lines(log)
    assert 'rank 0 of 2 (gloo), LOCAL_RANK=0, SyncBN replaced by BN' in log
    ckpt = load_checkpoint_file(tmp_path / 'iter_3.pth')
    assert ckpt['meta']['iter'] == 3


@pytest.fixture
def toy_copy(toy_ade20k, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(toy_ade20k['data_root'], root)
    return root


def run_test_loop(data_root, work_dir):
    cfg = load_config(TOY, toy_options(data_root))
    cfg.work_dir = str(work_dir)
    return Runner.from_cfg(cfg).test()


def test_label_outside_the_classes_is_named(toy_copy, tmp_path):
    bad = toy_copy / 'annotations' / 'validation' / 'ADE_val_00000002.png'
    label = cv2.imread(str(bad), cv2.IMREAD_UNCHANGED)
    label[5:9, 5:9] = 9  # 8 after reduce_zero_label; the classes are 0..3
    cv2.imwrite(str(bad), label)
    with pytest.raises(DataError, match=r'ADE_val_00000002\.png: label '
                       r'values \[8\].*valid labels are 0\.\.3 and 255'):
        run_test_loop(toy_copy, tmp_path)


def test_missing_label_map_is_named_before_running(toy_copy, tmp_path):
    (toy_copy / 'annotations' / 'validation' / 'ADE_val_00000003.png').unlink()
    with pytest.raises(DataError,
                       match=r'1 of 4 images have no label map, e.g. '
                       r'.*ADE_val_00000003\.jpg \(expected .*'
                       r'ADE_val_00000003\.png\)'):
        run_test_loop(toy_copy, tmp_path)


def test_wrong_num_classes_stops_training(toy_ade20k, tmp_path):
    cfg = load_config(TOY, toy_options(toy_ade20k['data_root'], **{
        'model.decode_head.num_classes': 150}))
    cfg.work_dir = str(tmp_path)
    with pytest.raises(DataError, match=re.escape(
            'FPNHead.num_classes=150 but the dataset has 4 classes (ground, '
            'circle, square, triangle); set num_classes=4')):
        Runner.from_cfg(cfg).train()
    assert not glob.glob(str(tmp_path / '*.pth'))
