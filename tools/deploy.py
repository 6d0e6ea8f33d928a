"""Export a whole mmdet/mmseg model (image -> predictions) to one ONNX file.

The graph runs in plain onnxruntime: box decoding, score threshold,
per-class NMS and top-k (detection; for Faster/Mask R-CNN also the RPN,
RoIAlign and the mask head) or the resize of the logits to the input
(segmentation) are inside it. Outputs and padding: see mmevit/deploy.

Examples::

    python tools/deploy.py configs/toy/retinanet_efficientvit_m0_toy.py \\
        work_dirs/demo/epoch_6.pth --out work_dirs/demo/retinanet.onnx
    python tools/deploy.py CONFIG CKPT --out model.onnx --deploy-bn-fold \\
        --compare-latency 5   # eager, eager BN-folded, onnxruntime
"""
import argparse
import copy
import os.path as osp
import sys

import torch
from mmengine.config import DictAction

from mmevit import deploy  # its exporter is imported on first use
from mmevit.engine import load_model_checkpoint
from mmevit.tools import (
    build_model,
    data_samples,
    exit_on_user_error,
    image_shape,
    time_side_by_side,
)

AXES = ('batch', 'height', 'width')


def dynamic_axes(text):
    """argparse type: ``'batch,height,width'`` -> a tuple of axis names."""
    names = tuple(name for name in text.split(',') if name)
    bad = [name for name in names if name not in AXES]
    if bad:
        raise argparse.ArgumentTypeError(
            f'bad dynamic axis {bad[0]!r}; choose from {",".join(AXES)}')
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a whole detector/segmentor to ONNX')
    parser.add_argument('config', help='mmdet/mmseg config file')
    parser.add_argument('checkpoint', help='checkpoint that fits the config')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing --out file')
    parser.add_argument('--deploy-bn-fold', action='store_true',
                        help='fold BatchNorm into the convolutions first')
    parser.add_argument('--shape', type=image_shape, default=(320, 320),
                        help='traced input size, HxW (default 320x320)')
    parser.add_argument('--dynamic', type=dynamic_axes, default=AXES,
                        help='dynamic input axes (default batch,height,width)')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--compare-latency', type=int, default=0,
                        metavar='N', help='after export, time N runs of '
                        'eager, eager BN-folded and onnxruntime at --shape, '
                        'one thread each, side by side')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def export(args):
    """Build, load strictly, export; returns (config, task, model)."""
    if osp.exists(args.out) and not args.force:
        raise FileExistsError(f'{args.out} exists; pass --force to '
                              'overwrite it')
    cfg, task, model = build_model(args.config, args.cfg_options)
    checkpoint = load_model_checkpoint(model, args.checkpoint)
    wrapper = deploy.export_wrapper(task, copy.deepcopy(model))
    if args.deploy_bn_fold:
        deploy.fold_batch_norm(wrapper)
    dataset_meta = checkpoint.get('meta', {}).get('dataset_meta') or dict(
        cfg.get('test_dataloader', {}).get('dataset', {}).get('metainfo', {}))
    deploy.export_onnx(wrapper, args.out, task, args.shape, args.dynamic,
                dataset_meta, args.opset)
    print(f'exported {args.out}: {type(model).__name__}, outputs '
          f'{", ".join(wrapper.output_names)}; dynamic '
          f'{",".join(args.dynamic) or "none"}; traced at '
          f'{args.shape[0]}x{args.shape[1]}; opset {args.opset}')
    return cfg, task, model


def compare_latency(cfg, task, model, onnx_file, shape, repeats):
    """Print the median latency of eager predict, BN-folded eager predict
    and onnxruntime on one random image, one thread each, rounds interleaved.

    A detector's file runs through ``OnnxDetector.predict`` (boxes scaled,
    Mask R-CNN's masks pasted into the image, as eager predict does); a
    segmentor's is the bare onnxruntime session."""
    from mmevit.deploy.runtime import OnnxSession, init_onnx_model
    session = OnnxSession(onnx_file, task, num_threads=1)
    folded = deploy.fold_batch_norm(copy.deepcopy(model))
    x = torch.randn(1, 3, *shape)
    samples = data_samples(task, *shape)
    runs = {
        'PyTorch eager': lambda: model.predict(x, samples),
        'PyTorch eager, BN folded': lambda: folded.predict(x, samples),
        'onnxruntime': lambda: session(x),
    }
    if task == 'mmdet':
        onnx_model = init_onnx_model(cfg, onnx_file)
        onnx_model.session = session
        runs['onnxruntime'] = lambda: onnx_model.predict(x, samples)
    time_side_by_side(runs, shape, repeats)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        cfg, task, model = export(args)
        if args.compare_latency:
            compare_latency(cfg, task, model, args.out, args.shape,
                            args.compare_latency)


if __name__ == '__main__':
    sys.exit(main())
