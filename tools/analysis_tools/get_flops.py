"""Parameters and FLOPs of EfficientViT backbones and whole models.

FLOPs are counted by torch's dispatch-level counter on a real forward pass
(what actually runs, padded attention windows included). ``GMACs`` are
multiply-adds, the unit EfficientViT's paper calls FLOPs; ``GFLOP`` = 2 x.

Examples::

    # backbones and the paper's ImageNet classifiers at 224
    python tools/analysis_tools/get_flops.py --arch m0 m1 m2 m3 m4 m5 --shape 224
    # backbone, backbone+neck and the whole detector at 800x1344
    python tools/analysis_tools/get_flops.py configs/retinanet_efficientvit_m4_coco.py
"""
import argparse
import sys

import torch
from mmengine.config import DictAction

from mmevit.tools import build_model, data_samples, image_shape
from mmevit.tools.benchmark.flops import (
    PAPER_COMPLEXITY,
    classifier_complexity,
    count_flops,
    count_parameters,
)
from mmevit.tools.benchmark.models import build_backbone
from mmevit.tools.benchmark.table import format_table, write_json
from mmevit.tools.cli import exit_on_user_error

ARCH_COLUMNS = ['name', 'shape', 'params_m', 'gmacs', 'gflop',
                'classifier_params_m', 'classifier_mmacs', 'paper_params_m',
                'paper_mmacs']
CONFIG_COLUMNS = ['name', 'shape', 'params_m', 'gmacs', 'gflop']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of backbones and whole models')
    parser.add_argument('configs', nargs='*',
                        help='mmdet/mmseg configs (paths or mmdet::...)')
    parser.add_argument('--arch', nargs='+', default=[],
                        help='EfficientViT archs (backbone and the paper\'s '
                        'classifier)')
    parser.add_argument('--shape', type=image_shape, default=(800, 1344),
                        help='input size, HxW or S (default 800x1344)')
    parser.add_argument('--json', help='write the rows to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    args = parser.parse_args(argv)
    if not args.configs and not args.arch:
        parser.error('give a config or --arch')
    return args


def complexity_row(name, module, fn, height, width):
    counts = count_flops(fn, torch.zeros(1, 3, height, width))
    return dict(name=name, shape=[1, 3, height, width],
                params_m=count_parameters(module) / 1e6,
                gmacs=counts['macs'] / 1e9, gflop=counts['flops'] / 1e9)


def arch_rows(archs, height, width):
    rows = []
    for arch in archs:
        backbone = build_backbone(arch)
        row = complexity_row(f'EfficientViT-{arch.upper()} backbone',
                             backbone, backbone, height, width)
        if height == width:
            classifier = classifier_complexity(arch.lower(), height)
            row['classifier_params_m'] = classifier['params'] / 1e6
            row['classifier_mmacs'] = classifier['macs'] / 1e6
        if (height, width) == (224, 224):
            row['paper_params_m'], row['paper_mmacs'] = \
                PAPER_COMPLEXITY[arch.lower()]
        rows.append(row)
    return rows


def config_rows(config, height, width, cfg_options):
    _, task, model = build_model(config, cfg_options)
    stem = config.split('::')[-1].rsplit('/', 1)[-1].removesuffix('.py')
    neck_params = count_parameters(model.backbone) + count_parameters(
        model.neck)
    rows = [
        complexity_row(f'{stem}: backbone', model.backbone, model.backbone,
                       height, width),
        complexity_row(f'{stem}: backbone+neck', model.backbone,
                       model.extract_feat, height, width),
        complexity_row(f'{stem}: model (tensor mode)', model,
                       lambda x: model._forward(
                           x, data_samples(task, *x.shape[2:], len(x))),
                       height, width),
    ]
    rows[1]['params_m'] = neck_params / 1e6
    return rows


def run(args):
    height, width = args.shape
    rows = arch_rows(args.arch, height, width)
    if rows:
        print(format_table(rows, ARCH_COLUMNS))
    config_table = []
    for config in args.configs:
        config_table += config_rows(config, height, width, args.cfg_options)
    if config_table:
        print(format_table(config_table, CONFIG_COLUMNS))
    if args.json:
        write_json(args.json, rows + config_table,
                   dict(counter='torch.utils.flop_counter.FlopCounterMode',
                        torch=torch.__version__))


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        run(args)


if __name__ == '__main__':
    sys.exit(main())
