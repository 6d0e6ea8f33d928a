"""Export an EfficientViT backbone (or backbone+neck) to ONNX and check it.

Uses torch's ``torch.export``-based exporter (``dynamo=True``, the default
since torch 2.9; the TorchScript exporter is deprecated), which needs the
``onnx`` and ``onnxscript`` packages. The graph has dynamic batch, height and
width. After export it runs in
onnxruntime at the check sizes and is compared with PyTorch; the exit
status is 1 if the max relative difference exceeds ``--tolerance``.

Examples::

    python tools/analysis_tools/export_onnx.py --arch m4 --out efficientvit_m4.onnx
    python tools/analysis_tools/export_onnx.py --arch m4 --out efficientvit_m4.onnx \\
        --shape 800x1344 --check-shapes 800x1344
    python tools/analysis_tools/export_onnx.py configs/retinanet_efficientvit_m4_coco.py \\
        --part backbone+neck --out retinanet_m4_features.onnx --deploy

The speed of such a file against eager PyTorch:
``python tools/analysis_tools/benchmark.py --arch m4 --paths eager-fp32
ort-fp32 ort-int8``.
"""
import argparse
import sys

import torch
from mmengine.config import DictAction

from mmevit.models import fold_batch_norm
from mmevit.tools import build_model, exit_on_user_error, image_shape
from mmevit.tools.backbone_onnx import BackboneWithNeck, check_onnx, export_backbone_onnx
from mmevit.tools.benchmark.models import build_backbone
from mmevit.tools.benchmark.table import format_table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a backbone (or backbone+neck) to ONNX with '
        'dynamic input size and check it with onnxruntime')
    parser.add_argument('config', nargs='?',
                        help='mmdet/mmseg config; omit to export --arch')
    parser.add_argument('--arch', help='EfficientViT arch (without config)')
    parser.add_argument('--part', default='backbone',
                        choices=['backbone', 'backbone+neck'])
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--shape', type=image_shape, default=(224, 320),
                        help='example input for tracing, HxW or S')
    parser.add_argument('--check-shapes', type=image_shape, nargs='+',
                        default=[(224, 320), (383, 511)],
                        help='sizes to compare with onnxruntime')
    parser.add_argument('--deploy', action='store_true',
                        help='fold BN into the convolutions first')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='max relative difference allowed')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.arch):
        parser.error('give either a config or --arch')
    if args.arch and args.part != 'backbone':
        parser.error('--arch exports the backbone; pass a config for '
                     'backbone+neck')
    return args


def build_module(args):
    if args.arch:
        return build_backbone(args.arch)
    _, _, model = build_model(args.config, args.cfg_options)
    if args.part == 'backbone':
        return model.backbone
    return BackboneWithNeck(model.backbone, model.neck)


def run(args):
    module = build_module(args).eval()
    if args.deploy:
        fold_batch_norm(module)
    names = export_backbone_onnx(module, args.out, *args.shape,
                                 opset=args.opset)
    print(f'exported {args.out} (outputs {", ".join(names)}; dynamic '
          f'batch, height, width; opset {args.opset}; torch '
          f'{torch.__version__} torch.export-based exporter)')
    rows = check_onnx(module, args.out,
                      [(1, h, w) for h, w in args.check_shapes])
    print(format_table(rows, ['shape', 'max_abs_diff', 'max_rel_diff']))
    worst = max(row['max_rel_diff'] for row in rows)
    if worst > args.tolerance:
        print(f'error: onnxruntime differs from PyTorch: max relative '
              f'difference {worst:.2e} > tolerance {args.tolerance:.0e}',
              file=sys.stderr)
        return 1
    print(f'onnxruntime matches PyTorch: max relative difference '
          f'{worst:.2e} <= {args.tolerance:.0e}')
    return 0


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        return run(args)


if __name__ == '__main__':
    sys.exit(main())
