"""Latency of EfficientViT backbones and of whole detectors and segmentors,
eager (fp32, bf16) and in onnxruntime (fp32, int8), timed side by side.

Every row of one input size and thread count is timed in the same
interleaved rounds (warm-up discarded, median reported), so the ratios
printed beside each row compare directly: ``x_eager_fp32`` over the same
model in eager fp32, ``x_reference`` over the ``--reference`` model on the
same part and path. Weights are random (seeded) with BN statistics gathered
on random images. The machine, versions and date are printed and saved.

Examples::

    # the backbone of two archs at the detection input size
    python tools/analysis_tools/benchmark.py --arch m0 m4 --shape 800x1344
    # backbone, backbone+neck and the whole detector of a config
    python tools/analysis_tools/benchmark.py configs/retinanet_efficientvit_m4_coco.py \\
        --parts backbone backbone+neck model --shape 800x1344
    # the whole model in four precisions at one and two threads
    python tools/analysis_tools/benchmark.py configs/retinanet_efficientvit_m4_coco.py \\
        --paths eager-fp32 eager-bf16 ort-fp32 ort-int8 --threads 1 2
    # real time: the same post-processing load for every detector
    python tools/analysis_tools/benchmark.py mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py \\
        configs/rtmdet_efficientvit_m0_coco.py --shape 640 --candidates 1000 \\
        --reference 0
    # mmevit against the official algorithm (same weights)
    python tools/analysis_tools/benchmark.py --arch m4 --compare-official --shape 800x1344
    # the paper's GPU throughput protocol (CUDA)
    python tools/analysis_tools/benchmark.py --arch m0 m1 m2 m3 m4 m5 --gpu-throughput
"""
import argparse
import sys

import torch
from mmengine.config import DictAction

from mmevit.tools import image_shape
from mmevit.tools.benchmark.gpu_throughput import gpu_throughput_rows
from mmevit.tools.benchmark.input_checks import positive_int, resolve_device
from mmevit.tools.benchmark.measure import measure, torch_threads
from mmevit.tools.benchmark.models import check_arch
from mmevit.tools.benchmark.official_baseline import compare_official
from mmevit.tools.benchmark.subjects import PARTS, PATHS, arch_subject, config_subject
from mmevit.tools.benchmark.table import (
    format_table,
    machine_info,
    plot_latency_vs_gflop,
    plot_latency_vs_size,
    present_columns,
    write_json,
)
from mmevit.tools.cli import exit_on_user_error

COLUMNS = ['model', 'part', 'path', 'threads', 'shape', 'latency_ms',
           'latency_iqr_ms', 'x_eager_fp32', 'x_reference', 'candidates', 'masks',
           'gflop', 'params_m', 'gflops_per_s', 'fraction_of_matmul']
COMPARE_COLUMNS = ['model', 'threads', 'shape', 'latency_ms', 'latency_iqr_ms',
                   'gflops_per_s', 'matmul_gflops_per_s',
                   'speedup_vs_official', 'max_rel_diff_vs_official']
GPU_COLUMNS = ['arch', 'batch', 'images_per_s', 'paper_v100_images_per_s',
               'ratio_to_paper', 'largest_batch', 'images_per_s_largest']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('Examples::')[1])
    parser.add_argument('configs', nargs='*',
                        help='mmdet/mmseg configs (paths or mmdet::...)')
    parser.add_argument('--arch', nargs='+', default=[],
                        help='EfficientViT archs whose bare backbone to time')
    parser.add_argument('--parts', nargs='+', choices=PARTS,
                        help='parts of each config\'s model to time '
                        '(default: model; an arch has only its backbone)')
    parser.add_argument('--paths', nargs='+', choices=PATHS,
                        default=['eager-fp32'],
                        help='how each part runs (default eager-fp32)')
    parser.add_argument('--shape', nargs='+', type=image_shape,
                        help='input sizes, HxW or S (default 800x1344; 224 '
                        'with --gpu-throughput)')
    parser.add_argument('--threads', nargs='+', type=positive_int,
                        help='thread counts of torch and onnxruntime, each '
                        'timed in its own rounds (default: their defaults)')
    parser.add_argument('--batch-size', type=positive_int, default=1)
    parser.add_argument('--device', default='cpu',
                        help='cpu or cuda[:N] (eager paths)')
    parser.add_argument('--reference', type=int, metavar='I',
                        help='position of the model the x_reference ratios '
                        'refer to (the --arch archs, then the configs)')
    parser.add_argument('--candidates', type=positive_int, metavar='K',
                        help='set each dense detector\'s score_thr so that K '
                        'scores pass it on the timed image (the same '
                        'post-processing load for every detector)')
    parser.add_argument('--masks', type=positive_int, metavar='M',
                        help='with --candidates: give every instance '
                        'segmentation model (RTMDet-Ins) M final detections, '
                        'each with its mask')
    parser.add_argument('--deploy', action='store_true',
                        help='fold every BN into its conv first')
    parser.add_argument('--compile', action='store_true',
                        help='wrap each eager part in torch.compile')
    parser.add_argument('--calib-images', type=positive_int, default=2,
                        help='random calibration inputs of int8 files')
    parser.add_argument('--compare-official', action='store_true',
                        help='time each --arch against the official '
                        'algorithm with the same weights (speed-up and max '
                        'relative difference)')
    parser.add_argument('--gpu-throughput', action='store_true',
                        help='the paper\'s protocol: images/s of the --arch '
                        'classifiers on CUDA, fp16, batch 2048 and the '
                        'largest that fits')
    parser.add_argument('--max-batch', type=positive_int, default=16384,
                        help='largest batch of --gpu-throughput')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=positive_int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='write the rows and the machine to '
                        'this JSON file')
    parser.add_argument('--plot', help='write a PNG: latency against input '
                        'size, or, for several models at one size, against '
                        'their GFLOP')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides merged into every config')
    args = parser.parse_args(argv)
    if not args.configs and not args.arch:
        parser.error('give a config or --arch')
    special = [name for name in ('compare_official', 'gpu_throughput')
               if getattr(args, name)]
    if special and (args.configs or args.parts or args.deploy or args.compile
                    or args.candidates or args.reference is not None
                    or args.paths != ['eager-fp32']):
        parser.error(f'--{special[0].replace("_", "-")} times --arch '
                     'backbones only: drop configs, --parts, --paths, '
                     '--deploy, --compile, --candidates and --reference')
    if args.masks and not args.candidates:
        parser.error('--masks needs --candidates (the masks are the best of '
                     'the candidates that survive NMS)')
    count = len(args.arch) + len(args.configs)
    if args.reference is not None and not 0 <= args.reference < count:
        parser.error(f'--reference {args.reference}: choose 0..{count - 1} '
                     '(the positions of the --arch archs, then the configs)')
    args.shape = args.shape or [(224, 224) if args.gpu_throughput
                                else (800, 1344)]
    args.parts = args.parts or ['model']
    return args


def run_benchmark(args, device):
    x = torch.randn(1, 3, *args.shape[0],
                    generator=torch.Generator().manual_seed(args.seed))
    subjects = [arch_subject(arch, x, args.seed, args.deploy)
                for arch in args.arch]
    subjects += [config_subject(config, x, args.seed, args.deploy,
                                args.cfg_options)
                 for config in args.configs]
    for subject in subjects:
        subject.model.to(device)
    reference = None if args.reference is None else \
        subjects[args.reference].name
    return measure(subjects, args.parts, args.paths, args.shape,
                   args.threads or [None], device, args.batch_size,
                   args.warmup, args.repeats, args.seed, reference,
                   args.candidates, args.calib_images, args.compile, args.masks)


def run(args):
    if args.gpu_throughput:
        rows = gpu_throughput_rows([check_arch(a) for a in args.arch],
                                   args.shape[0][0], args.max_batch,
                                   args.warmup, args.repeats)
        return rows, GPU_COLUMNS, torch.device('cuda')
    device = resolve_device(args.device)
    if args.compare_official:
        rows = []
        for count in args.threads or [None]:
            with torch_threads(count):
                for arch in args.arch:
                    for shape in args.shape:
                        rows += compare_official(
                            arch, shape, args.batch_size, device,
                            args.warmup, args.repeats, args.seed)
        return rows, COMPARE_COLUMNS, device
    return run_benchmark(args, device), COLUMNS, device


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        rows, columns, device = run(args)
        meta = machine_info(device)
        meta.update(batch_size=args.batch_size, warmup=args.warmup,
                    repeats=args.repeats, deploy=args.deploy,
                    compile=args.compile)
        print(f"{meta['date']}  {meta.get('gpu', meta['cpu'])}  torch "
              f"{meta['torch']}  batch {args.batch_size}  median of "
              f"{args.repeats} interleaved rounds")
        print(format_table(rows, present_columns(rows, columns)))
        if args.json:
            write_json(args.json, rows, meta)
        if args.plot:
            title = (f"{meta['cpu']}, batch {args.batch_size}, torch "
                     f"{meta['torch']}, {meta['date']}")
            models = {row['model'] for row in rows}
            if len(args.shape) == 1 and len(models) > 1:
                shape = 'x'.join(map(str, args.shape[0]))
                plot_latency_vs_gflop(rows, args.plot, f'{title}, {shape}')
            else:
                plot_latency_vs_size(rows, args.plot, title)


if __name__ == '__main__':
    sys.exit(main())
