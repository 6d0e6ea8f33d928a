"""Detection configs, tools and checkpoints on real mmdet parts (CPU)."""
import datetime
import glob
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner, load_checkpoint
from mmengine.structures import InstanceData

from mmevit.engine import replace_sync_bn
from mmevit.models import EfficientViT
from mmevit.testing import OfficialEfficientViT, official_state_dict

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', '*_coco.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'swap', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'toy', '*rcnn*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'toy', 'retinanet*.py')))
EVIT_CONFIGS = [p for p in DET_CONFIGS if 'efficientvit' in osp.basename(p)]
RETINA_TOY = osp.join(ROOT, 'configs/toy/retinanet_efficientvit_m0_toy.py')
MASK_TOY = osp.join(ROOT, 'configs/toy/mask_rcnn_efficientvit_m0_toy.py')

register_all_modules(init_default_scope=True)


def build_detector(path):
    cfg = Config.fromfile(path)
    replace_sync_bn(cfg.model)
    return cfg, MODELS.build(cfg.model)


def fake_batch(h=128, w=160, with_masks=True):
    """Two images with one box each (and its mask: RTMDet's assigner reads
    masks as tensors, so box-only detectors get none, as from their
    pipelines)."""
    samples = []
    for _ in range(2):
        sample = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
            batch_input_shape=(h, w), scale_factor=(1., 1.)))
        gt = InstanceData(bboxes=torch.tensor([[10., 12., 70., 90.]]),
                          labels=torch.tensor([1]))
        if with_masks:
            mask = np.zeros((1, h, w), np.uint8)
            mask[0, 12:90, 10:70] = 1
            gt.masks = BitmapMasks(mask, h, w)
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=list(torch.rand(2, 3, h, w) * 255), data_samples=samples)


@pytest.mark.parametrize('path', DET_CONFIGS, ids=osp.basename)
def test_config_builds_and_runs_train_and_test(path):
    cfg, model = build_detector(path)
    masks = 'mask' in osp.basename(path)
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
    if 'mask' in osp.basename(path):
        assert 'masks' in pred


@pytest.mark.parametrize('path', EVIT_CONFIGS, ids=osp.basename)
def test_neck_in_channels_match_arch(path):
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    dims = EfficientViT.arch_zoo[backbone.arch]['embed_dims']
    out_indices = backbone.get('out_indices', (0, 1, 2))
    assert cfg.model.neck.in_channels == [dims[i] for i in out_indices]


def toy_options(data, **extra):
    """--cfg-options pointing a toy config at ``data`` (make_coco_toy)."""
    root = data['data_root'] + '/'
    options = {
        'train_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': data['val_ann_file'],
        'test_evaluator.ann_file': data['val_ann_file'],
        'train_dataloader.batch_size': 2,
        'val_dataloader.batch_size': 2,
        'test_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'val_dataloader.num_workers': 0,
        'test_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.persistent_workers': False,
    }
    options.update(extra)
    return options


def as_cli(options):
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def run_tool(*args, check=True, timeout=600):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, text=True,
                            capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n'
                             f'{result.stderr[-3000:]}')
    return result


def mean_loss(model, batches):
    """Mean total loss of ``model`` (train mode, no update) over fixed batches."""
    with torch.no_grad():
        totals = []
        for batch in batches:
            data = model.data_preprocessor(batch, True)
            loss, _ = model.parse_losses(model(**data, mode='loss'))
            totals.append(loss.item())
    return float(np.mean(totals))


class TrainingSetLoss(Hook):
    """Records the loss over the whole (fixed) training set before training."""

    def __init__(self, batches):
        self.batches = batches
        self.before = None

    def before_train(self, runner):
        self.before = mean_loss(runner.model, self.batches)


@pytest.mark.parametrize('path', [RETINA_TOY, MASK_TOY], ids=osp.basename)
def test_few_iterations_lower_the_loss(path, toy_coco, tmp_path):
    # Per-iteration losses of batch-2 from-scratch training are too noisy to
    # compare; the loss over the same 8 training images before and after
    # 40 iterations (5 epochs) is not.
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(toy_options(toy_coco))
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=40,
                         val_interval=1000)
    cfg.param_scheduler = []
    cfg.optim_wrapper.optimizer.lr = 1e-3
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=1000, save_last=False)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    training_set = list(runner.train_dataloader)
    assert len(training_set) == 4  # 8 images, batch 2
    recorder = TrainingSetLoss(training_set)
    runner.register_hook(recorder)
    runner.train()
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 40
    assert mean_loss(runner.model, training_set) < 0.75 * recorder.before


@pytest.fixture(scope='module')
def trained_mask_rcnn(toy_coco, tmp_path_factory):
    """tools/train.py: one epoch of the toy Mask R-CNN."""
    work_dir = tmp_path_factory.mktemp('mask_rcnn')
    options = toy_options(toy_coco, **{'train_cfg.max_epochs': 1,
                                       'default_hooks.logger.interval': 1})
    run_tool('tools/train.py', MASK_TOY, '--work-dir', str(work_dir),
             *as_cli(options))
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()
    return dict(work_dir=work_dir, checkpoint=str(checkpoint),
                options=options)


def test_tools_test_prints_bbox_and_segm_metrics(trained_mask_rcnn, tmp_path):
    options = dict(trained_mask_rcnn['options'])
    options['model.test_cfg.rcnn.score_thr'] = 0.0  # an untrained model
    out = tmp_path / 'results.pkl'
    result = run_tool('tools/test.py', MASK_TOY, trained_mask_rcnn['checkpoint'],
                      '--work-dir', str(tmp_path), '--out', str(out),
                      '--show-dir', 'overlays', *as_cli(options))
    log = result.stdout + result.stderr
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log
    assert out.is_file()
    assert glob.glob(str(tmp_path / '*' / 'overlays' / '*.jpg'))


def test_demo_draws_predictions(trained_mask_rcnn, toy_coco, tmp_path):
    image = osp.join(toy_coco['val_img_dir'], '000002.jpg')
    out = tmp_path / 'demo.png'
    run_tool('tools/demo.py', image, MASK_TOY, trained_mask_rcnn['checkpoint'],
             '--out', str(out), '--score-thr', '0')
    assert out.stat().st_size > 0


def test_killed_run_resumes_with_optimizer_state(toy_coco, tmp_path):
    options = toy_options(toy_coco, **{'train_cfg.max_epochs': 3,
                                       'train_cfg.val_interval': 10})
    cmd = [sys.executable, 'tools/train.py', RETINA_TOY, '--work-dir',
           str(tmp_path), *as_cli(options)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = tmp_path / 'epoch_1.pth'
    deadline = time.time() + 300
    while not first.is_file() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)  # let the save finish, then kill before epoch 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = {p: os.path.getsize(p) for p in glob.glob(str(tmp_path / '*.pth'))}
    assert saved and not (tmp_path / 'epoch_3.pth').exists()

    latest = max(saved, key=lambda p: int(p.rsplit('_', 1)[1][:-4]))
    ckpt = torch.load(latest, weights_only=True)
    cfg = Config.fromfile(RETINA_TOY)
    cfg.merge_from_dict(options)
    cfg.work_dir, cfg.resume, cfg.load_from = str(tmp_path), True, latest
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.load_or_resume()
    assert runner.iter == ckpt['meta']['iter'] and runner.epoch == \
        ckpt['meta']['epoch']
    resumed = runner.optim_wrapper.optimizer.state_dict()['state']
    for index, state in ckpt['optimizer']['state'].items():
        torch.testing.assert_close(resumed[index]['exp_avg'],
                                   state['exp_avg'])

    result = run_tool('tools/train.py', RETINA_TOY, '--work-dir',
                      str(tmp_path), '--resume', *as_cli(options))
    assert (tmp_path / 'epoch_3.pth').is_file()
    final = torch.load(tmp_path / 'epoch_3.pth', weights_only=True)
    assert final['meta']['iter'] == 3 * 4  # 8 images / batch 2, 3 epochs
    assert f'resumed epoch: {ckpt["meta"]["epoch"]}' in (result.stdout +
                                                           result.stderr)


def test_dist_train_two_cpu_processes(toy_coco, tmp_path):
    options = toy_options(toy_coco, **{'train_cfg.max_epochs': 1,
                                       'train_cfg.val_interval': 10})
    env = dict(os.environ, PYTHON=sys.executable, PORT='29613',
               OMP_NUM_THREADS='1')  # 2 processes on 2 cores
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', RETINA_TOY, '2', '--work-dir',
         str(tmp_path), *as_cli(options)], cwd=ROOT, env=env, text=True,
        capture_output=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert 'rank 0 of 2 (gloo)' in log
    ckpt = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    assert ckpt['meta']['iter'] == 2  # 8 images / (2 procs x batch 2)


def mmdet2_official_retinanet_checkpoint(path):
    """A checkpoint laid out like the official COCO RetinaNet-M4 release:
    mmdet 2.x meta, backbone keys in the official ``blocksN`` layout."""
    cfg, model = build_detector(
        osp.join(ROOT, 'configs/retinanet_efficientvit_m4_coco.py'))
    state = {k: v for k, v in official_state_dict(model, 1).items()
             if not k.startswith('backbone.')}
    reference = OfficialEfficientViT(**EfficientViT.arch_zoo['m4'])
    backbone = {k: v for k, v in official_state_dict(reference, 2).items()}
    state.update({f'backbone.{k}': v for k, v in backbone.items()})
    torch.save({'meta': {'mmdet_version': '2.25.0', 'mmcv_version': '1.7.0',
                         'epoch': 12, 'iter': 87948,
                         'CLASSES': ('person', 'bicycle')},
                'state_dict': state,
                'optimizer': {'state': {}, 'param_groups': []}}, path)
    return cfg, reference.eval()


def test_official_coco_checkpoint_loads_strictly(tmp_path):
    path = tmp_path / 'retinanet_efficientvit_m4_fpn_1x_coco.pth'
    cfg, reference = mmdet2_official_retinanet_checkpoint(path)
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, str(path), strict=True)  # what tools/test.py uses
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for ours, theirs in zip(model.backbone(x), reference(x)):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_missing_data_root_is_a_clear_error(tmp_path):
    missing = tmp_path / 'nowhere'
    options = toy_options(dict(data_root=str(missing),
                               val_ann_file=str(missing / 'val.json')))
    result = run_tool('tools/train.py', RETINA_TOY, '--work-dir',
                      str(tmp_path / 'work'), *as_cli(options), check=False)
    assert result.returncode == 2
    assert 'error:' in result.stderr and str(missing) in result.stderr
    assert 'Traceback' not in result.stderr


def test_arch_and_in_channels_disagree(toy_coco, tmp_path):
    options = toy_options(toy_coco, **{'model.backbone.arch': 'm2',
                                       'train_cfg.max_epochs': 1})
    result = run_tool('tools/train.py', RETINA_TOY, '--work-dir',
                      str(tmp_path), *as_cli(options), check=False)
    assert result.returncode == 2
    assert 'in_channels=[64, 128, 192]' in result.stderr
    assert 'channels [128, 192, 224]' in result.stderr


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


def test_plot_logs_draws_curves(trained_mask_rcnn, tmp_path):
    out = tmp_path / 'curves.png'
    result = run_tool('tools/plot_logs.py', str(trained_mask_rcnn['work_dir']),
                      '--out', str(out))
    assert '4 loss' in result.stdout  # 8 images / batch 2, logged every iter
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    missing = run_tool('tools/plot_logs.py', str(tmp_path), '--out',
                       str(out), check=False)
    assert missing.returncode == 2 and 'scalars.json' in missing.stderr


def test_plot_logs_compares_runs_at_equal_minutes(trained_mask_rcnn, tmp_path):
    work_dir = trained_mask_rcnn['work_dir']
    copy = tmp_path / 'copy'
    shutil.copytree(work_dir, copy)
    out = tmp_path / 'minutes.png'
    result = run_tool('tools/plot_logs.py', str(work_dir), str(copy),
                      '--x', 'minutes', '--out', str(out))
    rows = [line for line in result.stdout.splitlines() if ' min ' in line]
    assert [row.split()[0] for row in rows] == [work_dir.name, 'copy']
    assert all('step      1' in row and 'coco/segm_mAP=' in row for row in rows)
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    # A run resumed twice: the three runs' minutes add up. Each copy's log
    # starts 10 minutes earlier, so a run lasts ~10 min, well above rounding.
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
    result = run_tool('tools/plot_logs.py', str(resumed), '--x', 'minutes',
                      '--out', str(out))
    one_run = 10 + float(rows[0].split()[3])
    [three_runs] = [float(line.split()[3]) for line in result.stdout.splitlines()
                    if ' min ' in line]
    assert three_runs == pytest.approx(3 * one_run, abs=0.2)

    for log in copy.glob('*/*.log'):
        log.unlink()
    no_log = run_tool('tools/plot_logs.py', str(copy), '--x', 'minutes',
                      '--out', str(out), check=False)
    assert no_log.returncode == 2 and 'text logs' in no_log.stderr
