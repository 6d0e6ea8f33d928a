"""Evaluate a checkpoint of an mmdet or mmseg model (COCO mAP, mIoU)."""
import argparse
import os.path as osp
import sys

from mmengine.device import get_device

from mmevit.engine import build_runner, unwrap_model
from mmevit.errors import ConfigError
from mmevit.tools import (
    check_model_channels,
    end_distributed,
    explain_data_errors,
    prepare_cpu_distributed,
    replace_sync_bn,
)
from mmevit.tools.cli import (
    add_onnx_providers_argument,
    add_runner_arguments,
    check_onnx_providers_arg,
    exit_on_user_error,
    parse_runner_args,
)
from mmevit.tools.config_options import runner_config
from mmevit.tools.precision import autocast_network, check_precision_args


def parse_args():
    parser = argparse.ArgumentParser(description='Test a detector or segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or an .onnx file '
                        'from tools/deploy.py to run in onnxruntime')
    parser.add_argument(
        '--out', help='detection: dump raw results to this .pkl file; '
        'segmentation: save predicted label maps to this directory')
    parser.add_argument('--show-dir',
                        help='write prediction overlays to this directory '
                        '(detection: relative to the work dir\'s run folder; '
                        'segmentation: ground truth | prediction pictures in '
                        'SHOW_DIR/vis_data/vis_image)')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--bf16', dest='precision', action='store_const',
                           const='bf16', help='run the network under '
                           'bfloat16 autocast (CPU or CUDA); post-processing '
                           'stays float32')
    precision.add_argument('--fp16', dest='precision', action='store_const',
                           const='fp16', help='the same in float16 (CUDA)')
    parser.add_argument('--show', action='store_true',
                        help='show each prediction in a window')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='seconds each --show window stays (default 2)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation with the config\'s '
                        'tta_model and tta_pipeline')
    add_onnx_providers_argument(parser)
    add_runner_arguments(parser)
    return parse_runner_args(parser)


def enable_drawing(cfg, task, args):
    """Let the config's visualization hook draw every test image: into
    ``--show-dir`` and/or in a window (``--show``, ``--wait-time``)."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ConfigError('--show and --show-dir need '
                          'default_hooks.visualization in the config')
    hook['draw'] = True
    if task == 'mmseg':
        hook['interval'] = 1
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if task == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        else:
            cfg.visualizer['save_dir'] = args.show_dir


def use_tta(cfg, checkpoint):
    """Test the config's ``tta_model`` around its model, on the
    ``tta_pipeline`` (as mmdet's and mmseg's tools do)."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise ConfigError(f'--tta needs {" and ".join(missing)} in the config '
                          '(mmdet\'s RTMDet and mmseg\'s bases define them)')
    if checkpoint.endswith('.onnx'):
        raise ConfigError('--tta runs the PyTorch model: an .onnx file holds '
                          'its own fixed pre- and post-processing')
    cfg.model = dict(**cfg.tta_model, module=cfg.model)
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:  # wrappers such as ConcatDataset's parts
        dataset = dataset.dataset
    # the augmented views have their own sizes (mmdet drops batch shapes too)
    if 'batch_shapes_cfg' in dataset:
        dataset.batch_shapes_cfg = None
    dataset.pipeline = cfg.tta_pipeline


def add_result_output(cfg, task, out):
    if task == 'mmdet':
        if not out.endswith(('.pkl', '.pickle')):
            raise ConfigError(f'--out {out!r} must end with .pkl for detection')
        cfg.test_evaluator = [cfg.test_evaluator,
                              dict(type='DumpDetResults', out_file_path=out)]
    else:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True


def build_cfg(args):
    cfg, task = runner_config(args)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    check_onnx_providers_arg(args.checkpoint, args.onnx_providers)
    cfg.load_from = args.checkpoint
    if args.precision:
        check_precision_args(args.checkpoint, args.precision, get_device())
    if args.checkpoint.endswith('.onnx'):
        from mmevit.deploy import use_onnx_file
        use_onnx_file(cfg, task, args.checkpoint, args.onnx_providers)
    if args.tta:
        use_tta(cfg, args.checkpoint)
    if args.show or args.show_dir:
        enable_drawing(cfg, task, args)
    if args.out:
        add_result_output(cfg, task, args.out)
    if args.launcher == 'none':
        replace_sync_bn(cfg.model)
    else:
        prepare_cpu_distributed(cfg)
    return cfg


def run(args):
    """Build the runner of ``args`` and test; returns the metrics."""
    cfg = build_cfg(args)
    runner = build_runner(cfg)
    check_model_channels(runner.model)
    if args.precision:
        autocast_network(unwrap_model(runner.model), args.precision)
    with explain_data_errors(cfg, 'test'):
        return runner.test()


def main():
    args = parse_args()
    with exit_on_user_error():
        run(args)
    end_distributed()  # the runner is out of scope


if __name__ == '__main__':
    sys.exit(main())
