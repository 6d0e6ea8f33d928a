"""Detection configs, tools and checkpoints on real mmdet parts (CPU)."""
import datetime
import glob
import os
import os.path as osp
import pickle
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmevit.checkpoint import load_checkpoint_file
from mmevit.engine import load_model_checkpoint
from mmevit.models import EfficientViT
from mmevit.tools import check_model_channels, replace_sync_bn
from tests.detection_data import (
    RETINA_TOY,
    as_cli,
    fake_batch,
    mean_loss,
    short_seeded_run,
    toy_options,
)
from tests.helpers import (
    failure_lines,
    free_port,
    load_tool,
    official_backbone,
    randomize_weights,
    run_tool,
    run_tool_in_process,
)
from tests.official.efficientvit_fpn import EfficientViTFPN as OfficialFPN

plot_logs = load_tool('analysis_tools/plot_logs')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', '*_coco.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'swap', '*_coco.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'toy', '*rcnn*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'toy', 'retinanet*.py')))
EVIT_CONFIGS = [p for p in DET_CONFIGS if 'efficientvit' in osp.basename(p)]
# M1-M3 configs differ from M0/M4/M5 only in the arch and the widths that
# follow it: they are built and channel-checked; the others also run steps.
MIDDLE_ARCHS = ('_m1_', '_m2_', '_m3_')
STEP_CONFIGS = [p for p in DET_CONFIGS
                if not any(a in osp.basename(p) for a in MIDDLE_ARCHS)]
MASK_TOY = osp.join(ROOT, 'configs/toy/mask_rcnn_efficientvit_m0_toy.py')

register_all_modules(init_default_scope=True)


def build_detector(path):
    cfg = Config.fromfile(path)
    replace_sync_bn(cfg.model)
    return cfg, MODELS.build(cfg.model)


@pytest.mark.parametrize('path', STEP_CONFIGS, ids=osp.basename)
def test_config_builds_and_runs_train_and_test(path):
    cfg, model = build_detector(path)
    masks = 'mask' in osp.basename(path) or 'rtmdet-ins' in osp.basename(path)
    model.train()
    data = model.data_preprocessor(fake_batch(with_masks=masks), True)
    losses = model(**data, mode='loss')
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(
            fake_batch(with_masks=masks), False), mode='predict')
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1] == 4
    if masks:
        assert 'masks' in pred


@pytest.mark.parametrize(
    'path', [p for p in DET_CONFIGS if p not in STEP_CONFIGS],
    ids=osp.basename)
def test_middle_arch_configs_build_with_fitting_channels(path):
    _, model = build_detector(path)
    check_model_channels(model)


@pytest.mark.parametrize('path', EVIT_CONFIGS, ids=osp.basename)
def test_neck_in_channels_match_arch(path):
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    dims = EfficientViT.arch_zoo[backbone.arch]['embed_dims']
    out_indices = backbone.get('out_indices', (0, 1, 2))
    assert cfg.model.neck.in_channels == [dims[i] for i in out_indices]


class TrainingSetLoss(Hook):
    """Records the loss over the whole (fixed) training set before training."""

    def __init__(self, batches):
        self.batches = batches
        self.before = None

    def before_train(self, runner):
        self.before = mean_loss(runner.model, self.batches)


@pytest.mark.parametrize('path, iters', [(RETINA_TOY, 40), (MASK_TOY, 25)],
                         ids=['retinanet', 'mask_rcnn'])
def test_few_iterations_lower_the_loss(path, iters, toy_coco, tmp_path):
    # Per-iteration losses of batch-2 from-scratch training are too noisy to
    # compare; the loss over the same 8 training images before and after
    # 25-40 iterations (3-5 epochs) is not.
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(toy_options(toy_coco))
    for step in cfg.train_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':  # the images' own size (96-160 px),
            step['scale'] = (160, 128)  # not the config's 2x upscaling
    # Seeded: seeds 0-4 (RetinaNet) and 0-2 (Mask R-CNN) ended at 0.49-0.59
    # of the start, but one unseeded RetinaNet run diverged (1.31).
    short_seeded_run(cfg, iters, tmp_path)
    cfg.optim_wrapper.optimizer.lr = 1e-3
    runner = Runner.from_cfg(cfg)
    training_set = list(runner.train_dataloader)
    assert len(training_set) == 4  # 8 images, batch 2
    recorder = TrainingSetLoss(training_set)
    runner.register_hook(recorder)
    runner.train()
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == iters
    assert mean_loss(runner.model, training_set) < 0.75 * recorder.before


@pytest.fixture(scope='module')
def trained_mask_rcnn(toy_coco, tmp_path_factory):
    """tools/train.py: one epoch of the toy Mask R-CNN."""
    work_dir = tmp_path_factory.mktemp('mask_rcnn')
    # val_interval 1: mmengine 0.10.3 validates only at its multiples;
    # score_thr 0: the untrained model's validation always has detections,
    # so the log has its metrics line on every stack
    options = toy_options(toy_coco, **{'train_cfg.max_epochs': 1,
                                       'train_cfg.val_interval': 1,
                                       'default_hooks.logger.interval': 1,
                                       'model.test_cfg.rcnn.score_thr': 0.0})
    run_tool('tools/train.py', MASK_TOY, '--work-dir', str(work_dir),
             *as_cli(options))
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()
    return dict(work_dir=work_dir, checkpoint=str(checkpoint),
                options=options)


def test_tools_test_prints_bbox_and_segm_metrics(trained_mask_rcnn, toy_coco,
                                                 tmp_path):
    options = trained_mask_rcnn['options']
    out = tmp_path / 'results.pkl'
    result = run_tool('tools/test.py', MASK_TOY, trained_mask_rcnn['checkpoint'],
                      '--work-dir', str(tmp_path), '--out', str(out),
                      '--show-dir', 'overlays', *as_cli(options))
    log = result.stdout + result.stderr
    for name in ('bbox_mAP', 'segm_mAP'):
        values = re.findall(rf'coco/{name}: (-?[\d.]+)', log)
        assert values and 0 <= float(values[-1]) <= 1, name
    images = sorted(os.listdir(toy_coco['val_img_dir']))
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert sorted(osp.basename(r['img_path']) for r in results) == images
    for r in results:  # score_thr 0: every image gets its boxes and masks
        boxes = r['pred_instances']['bboxes']
        assert len(boxes) > 0 and boxes.shape[1] == 4
        assert len(r['pred_instances']['masks']) == len(boxes)
    overlays = glob.glob(str(tmp_path / '*' / 'overlays' / '*.jpg'))
    assert sorted(osp.basename(p) for p in overlays) == images


def test_demo_draws_predictions(trained_mask_rcnn, toy_coco, tmp_path):
    """Above threshold 0 every prediction is drawn over the image; above 1.01
    none is, and the picture is the image itself."""
    image = osp.join(toy_coco['val_img_dir'], '000002.jpg')
    pixels = cv2.imread(image)
    drawn = {}
    for thr in ('0', '1.01'):
        out = tmp_path / f'demo_{thr}.png'
        result = run_tool('tools/demo.py', image, MASK_TOY,
                          trained_mask_rcnn['checkpoint'], '--out', str(out),
                          '--score-thr', thr)
        drawn[thr] = (re.search(r'(\d+) detections above', result.stdout),
                      cv2.imread(str(out)))
    (count, picture), (none, plain) = drawn['0'], drawn['1.01']
    assert int(count.group(1)) > 0 and int(none.group(1)) == 0
    assert picture.shape == plain.shape == pixels.shape
    np.testing.assert_array_equal(plain, pixels)
    assert (picture != pixels).any(axis=2).mean() > 0.01


def test_dist_train_two_cpu_processes(toy_coco, tmp_path):
    options = toy_options(toy_coco, **{'train_cfg.max_epochs': 1,
                                       'train_cfg.val_interval': 10})
    # PYTHONFAULTHANDLER: a rank that aborts prints every thread's stack
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1', PYTHONFAULTHANDLER='1')  # 2 procs, 2 cores
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', RETINA_TOY, '2', '--work-dir',
         str(tmp_path), *as_cli(options)], cwd=ROOT, env=env, text=True,
        capture_output=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, failure_lines(log)
    assert 'rank 0 of 2 (gloo)' in log
    ckpt = load_checkpoint_file(tmp_path / 'epoch_1.pth')
    assert ckpt['meta']['iter'] == 2  # 8 images / (2 procs x batch 2)


def mmdet2_official_checkpoint(config, path):
    """A checkpoint laid out like the official COCO releases (mmdet 2.x
    meta; backbone and neck from the transcribed official code, so in the
    official ``blocksN`` layout)."""
    cfg, model = build_detector(config)
    neck_cfg = {k: v for k, v in cfg.model.neck.items() if k != 'type'}
    backbone = official_backbone('m4', seed=2)
    neck = OfficialFPN(**neck_cfg)
    randomize_weights(neck, seed=3)
    state = {k: v for k, v in randomize_weights(model, 1).items()
             if not k.startswith(('backbone.', 'neck.'))}
    state.update({f'backbone.{k}': v for k, v in backbone.state_dict().items()})
    state.update({f'neck.{k}': v for k, v in neck.state_dict().items()})
    torch.save({'meta': {'mmdet_version': '2.25.0', 'mmcv_version': '1.7.0',
                         'epoch': 12, 'iter': 87948,
                         'CLASSES': ('person', 'bicycle')},
                'state_dict': state,
                'optimizer': {'state': {}, 'param_groups': []}}, path)
    backbone.eval()  # the official train() returns None
    return cfg, backbone, neck.eval()


@pytest.mark.parametrize('config', ['retinanet_efficientvit_m4_coco.py',
                                    'mask_rcnn_efficientvit_m4_coco.py'])
def test_official_coco_checkpoint_gives_official_features(config, tmp_path):
    """Official RetinaNet (one transposed conv) and Mask R-CNN (two) COCO
    checkpoints load strictly and give the official network's features."""
    path = tmp_path / 'official.pth'
    cfg, backbone, neck = mmdet2_official_checkpoint(
        osp.join(ROOT, 'configs', config), path)
    model = MODELS.build(cfg.model).eval()
    load_model_checkpoint(model, str(path))  # what tools/test.py uses
    # float64: random weights through M4 and the neck give large values
    x = torch.randn(1, 3, 100, 460, dtype=torch.float64)
    with torch.no_grad():
        ours = model.double().neck(model.backbone(x))
        theirs = neck.double()(backbone.double()(x))
    assert len(ours) == len(theirs) == 5
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_missing_data_root_is_a_clear_error(tmp_path, monkeypatch, capsys):
    missing = tmp_path / 'nowhere'
    options = toy_options(dict(data_root=str(missing),
                               val_ann_file=str(missing / 'val.json')))
    status = run_tool_in_process(monkeypatch, 'train', RETINA_TOY,
                                 '--work-dir', tmp_path / 'work',
                                 *as_cli(options))
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith('error:') and str(missing) in err
    assert len(err.splitlines()) == 1


def test_arch_and_in_channels_disagree(toy_coco, tmp_path, monkeypatch,
                                       capsys):
    options = toy_options(toy_coco, **{'model.backbone.arch': 'm2',
                                       'train_cfg.max_epochs': 1})
    status = run_tool_in_process(monkeypatch, 'train', RETINA_TOY,
                                 '--work-dir', tmp_path, *as_cli(options))
    err = capsys.readouterr().err
    assert status == 2
    assert 'in_channels=[64, 128, 192]' in err
    assert 'channels [128, 192, 224]' in err


def test_corrupt_image_names_the_file_and_keeps_checkpoints(
        trained_mask_rcnn, toy_coco, tmp_path):
    data = dict(toy_coco)
    bad_root = tmp_path / 'data'
    shutil.copytree(toy_coco['data_root'], bad_root)
    corrupt = bad_root / 'val' / '000002.jpg'
    corrupt.write_bytes(b'not a jpeg')
    data.update(data_root=str(bad_root),
                val_ann_file=str(bad_root / 'annotations/instances_val.json'))
    checkpoint = trained_mask_rcnn['checkpoint']
    before = open(checkpoint, 'rb').read()
    result = run_tool('tools/test.py', MASK_TOY, checkpoint, '--work-dir',
                      str(tmp_path / 'work'), *as_cli(toy_options(data)),
                      check=False)
    assert result.returncode != 0
    assert str(corrupt) in result.stdout + result.stderr
    assert open(checkpoint, 'rb').read() == before


def test_plot_logs_draws_curves(trained_mask_rcnn, tmp_path, capsys):
    out = tmp_path / 'curves.png'
    plot_logs.main([str(trained_mask_rcnn['work_dir']), '--out', str(out)])
    assert '4 loss' in capsys.readouterr().out  # 8 images / batch 2, every iter
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(SystemExit) as missing:
        plot_logs.main([str(tmp_path), '--out', str(out)])
    assert missing.value.code == 2 and 'scalars.json' in capsys.readouterr().err


def test_plot_logs_compares_runs_at_equal_minutes(trained_mask_rcnn, tmp_path,
                                                  capsys):
    work_dir = trained_mask_rcnn['work_dir']
    copy = tmp_path / 'copy'
    shutil.copytree(work_dir, copy)
    out = tmp_path / 'minutes.png'
    plot_logs.main([str(work_dir), str(copy), '--x', 'minutes', '--out',
                    str(out)])
    rows = [line for line in capsys.readouterr().out.splitlines()
            if ' min ' in line]
    assert [row.split()[0] for row in rows] == [work_dir.name, 'copy']
    assert all('step      1' in row and 'coco/segm_mAP=' in row for row in rows)
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # names for a reader instead of the work dirs', one per work dir
    plot_logs.main([str(work_dir), str(copy), '--x', 'minutes', '--labels',
                    'first', 'second', '--title', 'a machine', '--out',
                    str(out)])
    rows = [line for line in capsys.readouterr().out.splitlines()
            if ' min ' in line]
    assert [row.split()[0] for row in rows] == ['first', 'second']
    with pytest.raises(SystemExit) as bad_labels:
        plot_logs.main([str(work_dir), str(copy), '--labels', 'one',
                        '--out', str(out)])
    assert bad_labels.value.code == 2
    assert '--labels gives 1 names for 2 work dirs' in capsys.readouterr().err

    # A run resumed twice: the three runs' minutes add up. Each copy's log
    # starts 10 minutes earlier. Compared unrounded (the table rounds to 0.1).
    [run] = [p for p in work_dir.iterdir() if p.is_dir()]
    log_text = (run / f'{run.name}.log').read_text()
    start = datetime.datetime.strptime(log_text[:19], '%Y/%m/%d %H:%M:%S')
    earlier = start - datetime.timedelta(minutes=10)
    log_text = earlier.strftime('%Y/%m/%d %H:%M:%S') + log_text[19:]
    resumed = tmp_path / 'resumed'
    for suffix in ('1', '2', '3'):
        copy_run = resumed / (run.name + suffix)
        shutil.copytree(run, copy_run)
        (copy_run / f'{run.name}.log').unlink()
        (copy_run / f'{copy_run.name}.log').write_text(log_text)
    [one_run] = plot_logs.read_scalars(str(work_dir), need_minutes=True)[1]
    [three_runs] = plot_logs.read_scalars(str(resumed), need_minutes=True)[1]
    assert three_runs['minutes'] == pytest.approx(3 * (10 + one_run['minutes']))

    for log in copy.glob('*/*.log'):
        log.unlink()
    with pytest.raises(SystemExit) as no_log:
        plot_logs.main([str(copy), '--x', 'minutes', '--out', str(out)])
    assert no_log.value.code == 2 and 'text logs' in capsys.readouterr().err
