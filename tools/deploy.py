"""Export a whole mmdet/mmseg model (image -> predictions) to one ONNX file.

The graph runs in plain onnxruntime: box decoding, score threshold,
per-class NMS and top-k (detection; for Faster/Mask R-CNN also the RPN,
RoIAlign and the mask head) or the resize of the logits to the input
(segmentation) are inside it. Outputs and padding: see mmevit/deploy.

Examples::

    python tools/deploy.py configs/toy/retinanet_efficientvit_m0_toy.py \\
        work_dirs/demo/epoch_6.pth --out work_dirs/demo/retinanet.onnx
    python tools/deploy.py CONFIG CKPT --out model.onnx --deploy-bn-fold
    # INT8 (static QDQ), calibrated on 8 test images; or quantize a file
    # exported before: tools/deploy.py CONFIG model.onnx --out ... --quantize
    python tools/deploy.py CONFIG CKPT --out model_int8.onnx --quantize int8 \\
        --calib-images 8 --max-drop 0.01

The files' speed against eager PyTorch: ``tools/analysis_tools/benchmark.py
CONFIG --parts model --paths eager-fp32 ort-fp32 ort-int8``.
"""
import argparse
import copy
import os.path as osp
import sys
import tempfile

from mmengine.config import DictAction

from mmevit import deploy  # its exporter is imported on first use
from mmevit.engine import load_model_checkpoint, task_of
from mmevit.errors import ConfigError
from mmevit.stack import require_export_torch
from mmevit.tools import (
    build_model,
    exit_on_user_error,
    image_shape,
    load_config,
)

AXES = ('batch', 'height', 'width')
#: The metrics ``--max-drop`` compares (mAP from 0 to 1, mIoU in percent).
MAIN_METRICS = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU')


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
    parser.add_argument('checkpoint', help='checkpoint that fits the config, '
                        'or with --quantize an fp32 .onnx file exported '
                        'from it')
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
    parser.add_argument('--quantize', choices=['int8'],
                        help='write a statically quantized file (QDQ: '
                        'int8 convolutions and matmuls, the rest in float)')
    parser.add_argument('--calib-images', type=int, default=8, metavar='N',
                        help='calibrate on the first N images of the '
                        'config\'s test dataset or of --calib-dir '
                        '(default 8)')
    parser.add_argument('--calib-dir', help='calibrate on the images of '
                        'this folder instead')
    parser.add_argument('--max-drop', type=float, metavar='D',
                        help='evaluate fp32 and int8 on the calibration '
                        'images (the test dataset\'s labels) and warn if '
                        'the mAP (0-1) or mIoU (%%) drops by more than D')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def check_args(args):
    """Raise a one-line error for options that do not go together, before
    any work (an export takes minutes)."""
    if osp.exists(args.out) and not args.force:
        raise FileExistsError(f'{args.out} exists; pass --force to '
                              'overwrite it')
    if args.checkpoint.endswith('.onnx') and not args.quantize:
        raise ConfigError(f'{args.checkpoint} is an ONNX file: pass '
                          '--quantize int8 to quantize it, or a .pth '
                          'checkpoint to export')
    if not args.checkpoint.endswith('.onnx'):
        require_export_torch()  # quantizing an existing file needs no export
    if not args.quantize:
        return
    if args.calib_images < 1:
        raise ConfigError(f'--calib-images {args.calib_images}: give 1 or '
                          'more images')
    if args.max_drop is not None and args.max_drop < 0:
        raise ConfigError(f'--max-drop {args.max_drop}: give a drop >= 0 '
                          '(mAP from 0 to 1, mIoU in percent)')
    if args.calib_dir:
        from mmevit.deploy.calibration import folder_images
        folder_images(args.calib_dir, args.calib_images)


def export(args, out):
    """Build, load strictly, export to ``out``; returns (config, task,
    model)."""
    cfg, task, model = build_model(args.config, args.cfg_options)
    checkpoint = load_model_checkpoint(model, args.checkpoint)
    wrapper = deploy.export_wrapper(task, copy.deepcopy(model))
    if args.deploy_bn_fold:
        deploy.fold_batch_norm(wrapper)
    dataset_meta = checkpoint.get('meta', {}).get('dataset_meta') or dict(
        cfg.get('test_dataloader', {}).get('dataset', {}).get('metainfo', {}))
    deploy.export_onnx(wrapper, out, task, args.shape, args.dynamic,
                       dataset_meta, args.opset)
    print(f'exported {out}: {type(model).__name__}, outputs '
          f'{", ".join(wrapper.output_names)}; dynamic '
          f'{",".join(args.dynamic) or "none"}; traced at '
          f'{args.shape[0]}x{args.shape[1]}; opset {args.opset}')
    return cfg, task, model


def quantize(args, cfg, task, fp32_file):
    """Calibrate and write the int8 file ``args.out``; returns the number
    of calibration images."""
    from mmevit.deploy import calibration
    from mmevit.deploy.quantize import quantize_int8
    from mmevit.deploy.runtime import OnnxSession, check_num_classes
    session = OnnxSession(fp32_file, task)
    if session.precision != 'fp32':
        raise ConfigError(f'{fp32_file} is already {session.precision}; '
                          'quantize the fp32 file tools/deploy.py exported')
    check_num_classes(session, cfg, task, fp32_file)
    if args.calib_dir:
        source = args.calib_dir
        files = calibration.folder_images(args.calib_dir, args.calib_images)
        batches = calibration.folder_batches(cfg, task, files)
    else:
        source = 'the test dataset'
        batches = calibration.dataset_batches(cfg, task, args.calib_images)
    feeds = list(calibration.batch_feeds(session, task, batches))
    metadata = session.session.get_modelmeta().custom_metadata_map
    int8, float_ = quantize_int8(fp32_file, args.out, feeds, metadata)
    print(f'quantized {args.out} (int8, QDQ), calibrated on {len(feeds)} '
          f'images of {source}\n  int8: {_counts(int8)}\n  kept in float: '
          f'{_counts(float_)}')
    return len(feeds)


def _counts(counter):
    return ', '.join(f'{op} {count}' for op, count in sorted(
        counter.items(), key=lambda item: (-item[1], item[0]))) or 'none'


def evaluate(cfg, task, onnx_file, count, work_dir):
    """The test loop's metrics of ``onnx_file`` on the first ``count``
    images of the config's test dataset."""
    from mmevit.engine import build_runner
    run = copy.deepcopy(cfg)
    deploy.use_onnx_file(run, task, onnx_file)
    run.work_dir = work_dir
    run.test_dataloader.dataset.indices = count
    return build_runner(run).test()


def check_drop(cfg, task, files, count, max_drop, work_dir):
    """Print the fp32 and int8 metrics on the calibration images; warn
    where int8 is more than ``max_drop`` below."""
    fp32, int8 = (evaluate(cfg, task, path, count, osp.join(work_dir, name))
                  for name, path in files.items())
    for key in MAIN_METRICS:
        if key not in fp32:
            continue
        print(f'{key} on the {count} calibration images: fp32 '
              f'{fp32[key]:.4f}, int8 {int8[key]:.4f}')
        if fp32[key] - int8[key] > max_drop:
            print(f'warning: int8 {key} {int8[key]:.4f} is '
                  f'{fp32[key] - int8[key]:.4f} below fp32 {fp32[key]:.4f}, '
                  f'more than --max-drop {max_drop}', file=sys.stderr)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error(), tempfile.TemporaryDirectory() as tmp:
        check_args(args)
        if args.checkpoint.endswith('.onnx'):  # no model is built
            cfg = load_config(args.config, args.cfg_options)
            task = task_of(cfg)
            fp32_file = args.checkpoint
        else:
            fp32_file = osp.join(tmp, 'fp32.onnx') if args.quantize \
                else args.out
            cfg, task, _ = export(args, fp32_file)
        files = {'onnxruntime': fp32_file}
        if args.quantize:
            count = quantize(args, cfg, task, fp32_file)
            files['onnxruntime int8'] = args.out
            if args.max_drop is not None:
                if args.calib_dir:
                    print('warning: --max-drop needs labels; the images of '
                          '--calib-dir have none, nothing measured',
                          file=sys.stderr)
                else:
                    check_drop(cfg, task, files, count, args.max_drop, tmp)


if __name__ == '__main__':
    sys.exit(main())
