"""Write ``configs/metafile.yml``, the OpenMMLab model index of every config
(read by ``mim search mmevit`` through ``model-index.yml``).

Each config's entry holds its task, data, schedule, the ImageNet weights it
starts from, parameters and FLOPs counted on the built model (multiply-adds
of the tensor-mode forward at the config's test size, as get_flops.py
counts them), and, where the paper publishes them (M4 RetinaNet and Mask
R-CNN), its COCO results, marked as published, with the official
checkpoints as the entry's ``Weights``.

Example::

    python tools/analysis_tools/metafile.py            # rewrite configs/metafile.yml
    python tools/analysis_tools/metafile.py --check    # exit 1 if it is stale
"""
import argparse
import glob
import os.path as osp
import sys

import torch
import yaml
from mmengine.config import Config

from mmevit.tools import build_model, data_samples
from mmevit.tools.benchmark.flops import count_flops, count_parameters

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METAFILE = osp.join(ROOT, 'configs', 'metafile.yml')
PAPER = dict(Title='EfficientViT: Memory Efficient Vision Transformer with '
             'Cascaded Group Attention',
             URL='https://arxiv.org/abs/2305.07027')
#: Where the published results come from (mmevit has not re-measured them).
PUBLISHED = ('published in the paper (COCO val2017, Table 6) and by the '
             'official checkpoint; not re-measured by mmevit')
OFFICIAL_ZOO = ('https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/'
                'releases/download/v1.0/')
#: The official COCO checkpoints, which these configs evaluate as they are.
OFFICIAL_WEIGHTS = {
    'retinanet_efficientvit_m4_coco':
        OFFICIAL_ZOO + 'retinanet_efficientvit_m4_fpn_1x_coco.pth',
    'mask_rcnn_efficientvit_m4_coco':
        OFFICIAL_ZOO + 'mask_rcnn_efficientvit_m4_fpn_1x_coco.pth',
}
#: COCO val2017 results of the paper (Table 6), by config name.
PAPER_RESULTS = {
    'retinanet_efficientvit_m4_coco': [
        dict(Task='Object Detection', Dataset='COCO',
             Metrics={'box AP': 32.7, 'box AP50': 52.2, 'box AP75': 34.1})],
    'mask_rcnn_efficientvit_m4_coco': [
        dict(Task='Object Detection', Dataset='COCO',
             Metrics={'box AP': 32.8}),
        dict(Task='Instance Segmentation', Dataset='COCO',
             Metrics={'mask AP': 31.0, 'mask AP50': 51.2,
                      'mask AP75': 32.2})],
}
#: Input size (H, W) of the FLOPs count, by the config's training data,
#: unless the config tests at a fixed square size (the real-time configs'
#: 640x640).
FLOPS_SHAPE = {'COCO': (800, 1344), 'ADE20K': (512, 512),
               'synthetic shapes': (256, 320)}


def flops_shape(cfg, data):
    for step in cfg.test_dataloader.dataset.get('pipeline', []):
        scale = step.get('scale')
        if step.type == 'Resize' and scale and scale[0] == scale[1]:
            return tuple(scale)
    return FLOPS_SHAPE[data]


def config_names():
    """Config paths relative to the repository root, sorted."""
    paths = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, ROOT) for p in paths)


def training_data(cfg):
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:  # RepeatDataset and other wrappers
        dataset = dataset.dataset
    kind = dataset.type
    if 'toy' in str(dataset.get('data_root', '')):
        return 'synthetic shapes'
    return 'ADE20K' if 'ADE20K' in kind else 'COCO'


def schedule(cfg):
    """Epochs over the data set (a RepeatDataset of 3 copies trained for 12
    epochs is mmdet's 36-epoch 3x schedule), or iterations."""
    loop = cfg.train_cfg
    if 'max_epochs' not in loop:
        return {'Iterations': loop.max_iters}
    dataset, repeats = cfg.train_dataloader.dataset, 1
    while 'dataset' in dataset:
        repeats *= dataset.get('times', 1)
        dataset = dataset.dataset
    return {'Epochs': loop.max_epochs * repeats}


def architecture(cfg):
    model = cfg.model
    parts = [model.backbone.type, model.get('neck', {}).get('type'),
             model.type]
    for head in ('bbox_head', 'rpn_head', 'roi_head', 'decode_head'):
        if head in model:
            parts.append(model[head].type)
    return [p for p in parts if p]


def complexity(path, shape):
    """Parameters and multiply-adds of ``path``'s model at ``shape``. Seeded:
    a two-stage detector's count follows how many proposals its random
    weights keep."""
    torch.manual_seed(0)
    _, task, model = build_model(path)
    counts = count_flops(
        lambda x: model._forward(x, data_samples(task, *x.shape[2:], len(x))),
                         torch.zeros(1, 3, *shape))
    return count_parameters(model), counts['macs']


def entry(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    name = osp.splitext(osp.basename(path))[0]
    data = training_data(cfg)
    shape = flops_shape(cfg, data)
    params, macs = complexity(osp.join(ROOT, path), shape)
    backbone = cfg.model.backbone
    metadata = {'Training Data': data, **schedule(cfg),
                'Architecture': architecture(cfg),
                'Parameters': params, 'FLOPs': macs,
                'FLOPs Input': f'1x3x{shape[0]}x{shape[1]}'}
    init = backbone.get('init_cfg') or {}
    if init.get('checkpoint'):
        metadata['Pretrained Backbone'] = init['checkpoint']
    model = {'Name': name, 'In Collection': 'EfficientViT',
             'Config': path, 'Metadata': metadata}
    if name in PAPER_RESULTS:
        metadata['Results Source'] = PUBLISHED
        model['Results'] = PAPER_RESULTS[name]
    if name in OFFICIAL_WEIGHTS:
        model['Weights'] = OFFICIAL_WEIGHTS[name]
    return model


def metafile():
    collection = dict(Name='EfficientViT', Paper=PAPER,
                      README='README.md',
                      Metadata={'Architecture': ['EfficientViT']})
    return {'Collections': [collection],
            'Models': [entry(path) for path in config_names()]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='exit 1 if configs/metafile.yml is stale')
    args = parser.parse_args(argv)
    text = yaml.safe_dump(metafile(), sort_keys=False, width=100)
    if args.check:
        with open(METAFILE) as f:
            stale = f.read() != text
        print('configs/metafile.yml is ' + ('stale' if stale else 'current'))
        return 1 if stale else 0
    with open(METAFILE, 'w') as f:
        f.write(text)
    print(f'wrote {METAFILE} ({len(text.splitlines())} lines)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
