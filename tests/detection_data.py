"""The toy detection setups several test modules train and test: the toy
RetinaNet config on the synthetic COCO set, hand-made batches, and a short
seeded training run."""
import os.path as osp

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmevit.tools import replace_sync_bn
from tests.helpers import ROOT

RETINA_TOY = osp.join(ROOT, 'configs/toy/retinanet_efficientvit_m0_toy.py')


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


def mean_loss(model, batches):
    """Mean total loss of ``model`` (train mode, no update) over fixed batches."""
    with torch.no_grad():
        totals = []
        for batch in batches:
            data = model.data_preprocessor(batch, True)
            loss, _ = model.parse_losses(model(**data, mode='loss'))
            totals.append(loss.item())
    return float(np.mean(totals))


def short_seeded_run(cfg, iters, work_dir):
    """Make ``cfg`` train ``iters`` iterations at a constant learning rate,
    seeded, without validation or checkpoints, in ``work_dir``."""
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=0)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=1000)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=1000, save_last=False)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None


def toy_cfg(data, **options):
    """The toy RetinaNet config pointed at ``data`` (make_coco_toy)."""
    cfg = Config.fromfile(RETINA_TOY)
    root = data['data_root'] + '/'
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = root
    cfg.val_evaluator.ann_file = cfg.test_evaluator.ann_file = data[
        'val_ann_file']
    cfg.merge_from_dict(options)
    replace_sync_bn(cfg.model)
    return cfg
