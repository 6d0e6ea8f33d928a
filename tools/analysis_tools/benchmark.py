"""Latency and throughput of EfficientViT backbones, necks and whole models.

Examples::

    # the backbone of every arch at the detection input size
    python tools/analysis_tools/benchmark.py --arch m0 m4 --shape 800x1344
    # backbone, backbone+neck and the whole detector of a config, BN folded
    python tools/analysis_tools/benchmark.py configs/retinanet_efficientvit_m4_coco.py \\
        --parts backbone backbone+neck model --deploy --shape 800x1344
    # mmevit against the official algorithm (same weights), one run
    python tools/analysis_tools/benchmark.py --arch m4 --compare-official --shape 800x1344
"""
import argparse
import sys

import torch
from mmengine.config import DictAction

from mmevit.tools import image_shape
from mmevit.tools.cli import exit_on_user_error
from mmevit.tools.benchmark.input_checks import positive_int, resolve_device
from mmevit.tools.benchmark.targets import arch_targets, benchmark, compare_official, config_targets
from mmevit.tools.benchmark.models import PARTS
from mmevit.tools.benchmark.table import format_table, machine_info, plot_latency_vs_size, write_json

COLUMNS = ['name', 'shape', 'latency_ms', 'latency_iqr_ms', 'throughput',
           'gflop', 'gflops_per_s', 'matmul_gflops_per_s',
           'fraction_of_matmul']
COMPARE_COLUMNS = COLUMNS + ['speedup_vs_official',
                             'max_rel_diff_vs_official']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time EfficientViT backbones, necks and whole models '
        '(median latency after warm-up, interleaved with an fp32 matmul)')
    parser.add_argument('configs', nargs='*',
                        help='mmdet/mmseg configs (paths or mmdet::...)')
    parser.add_argument('--arch', nargs='+', default=[],
                        help='EfficientViT archs whose bare backbone to time')
    parser.add_argument('--parts', nargs='+', default=['backbone'],
                        choices=PARTS, help='parts of each config to time')
    parser.add_argument('--shape', nargs='+', type=image_shape,
                        default=[(800, 1344)],
                        help='input sizes, HxW or S (default 800x1344)')
    parser.add_argument('--batch-size', type=positive_int, default=1)
    parser.add_argument('--threads', type=positive_int,
                        help='CPU threads (default: torch\'s default)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    parser.add_argument('--deploy', action='store_true',
                        help='fold every BN into its conv first')
    parser.add_argument('--compile', action='store_true',
                        help='wrap each timed part in torch.compile')
    parser.add_argument('--compare-official', action='store_true',
                        help='time each --arch against the official '
                        'algorithm with the same weights (speed-up and max '
                        'relative difference)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=positive_int, default=10)
    parser.add_argument('--json', help='write the rows and machine to this '
                        'JSON file')
    parser.add_argument('--plot', help='write latency vs input size (PNG)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    args = parser.parse_args(argv)
    if not args.configs and not args.arch:
        parser.error('give a config or --arch')
    if args.compare_official and (args.configs or args.deploy
                                  or args.compile):
        parser.error('--compare-official times --arch backbones, eager, '
                     'with and without folded BN: drop configs, --deploy '
                     'and --compile')
    return args


def run(args):
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare_official:
        rows = []
        for arch in args.arch:
            for size in args.shape:
                rows += compare_official(arch, size, args.batch_size, device,
                                         args.warmup, args.repeats)
        columns = COMPARE_COLUMNS
    else:
        targets = []
        for arch in args.arch:
            targets += arch_targets(arch, device, args.deploy, args.compile)
        for config in args.configs:
            targets += config_targets(config, args.parts, device, args.deploy,
                                      args.compile, args.cfg_options)
        rows = benchmark(targets, args.shape, args.batch_size, device,
                         args.warmup, args.repeats)
        columns = COLUMNS
    meta = machine_info(device)
    meta.update(batch_size=args.batch_size, deploy=args.deploy,
                compile=args.compile, warmup=args.warmup,
                repeats=args.repeats)
    print(f"{meta['date']}  {meta['cpu']}  device={meta['device']}  "
          f"threads={meta['threads']}  torch {meta['torch']}  batch "
          f"{args.batch_size}  deploy={args.deploy}  compile={args.compile}")
    print(format_table(rows, columns))
    if args.json:
        write_json(args.json, rows, meta)
    if args.plot:
        plot_latency_vs_size(
            rows, args.plot, f"{meta['cpu']}, {meta['threads']} threads, "
            f"batch {args.batch_size}, torch {meta['torch']}")


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        run(args)


if __name__ == '__main__':
    sys.exit(main())
