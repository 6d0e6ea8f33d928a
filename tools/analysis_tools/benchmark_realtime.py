"""Whole-detector latency, FLOPs and parameters of several configs, side by side.

Every config is built (seeded random weights, SyncBN as BN, no checkpoint
loading) and timed in one process. The network's speed does not depend on
weight values; post-processing does (with random weights every candidate box
passes a low score threshold, and NMS time follows the random boxes). Each round
runs every model's ``test_step`` (data preprocessing, network and
post-processing with NMS, as inference does after the data pipeline) once, in
turn, so drifts of a shared machine hit all models alike; the median over the
rounds is reported, and the ratio of the reference's median to each model's
(``speedup``, > 1 is faster than the reference). ``network_ms`` times the
network alone (``tensor`` mode, no post-processing) the same way. FLOPs come
from torch's dispatch-level counter on the tensor-mode forward.
``--candidates K`` gives every model the same post-processing load: each
``score_thr`` is set just below the model's K-th best score on the timed
image (fair_load.py).

Example::

    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark_realtime.py \\
        mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py \\
        configs/rtmdet_efficientvit_m0_coco.py --shape 640 --threads 1
"""
import argparse
import json
import os.path as osp
import platform
import shutil
import statistics
import sys
import tempfile

import torch
from mmengine.config import DictAction
from torch.utils.flop_counter import FlopCounterMode

from mmevit.errors import ConfigError
from mmevit.tools import build_model, data_samples, interleaved_latencies
from mmevit.tools.benchmark.fair_load import set_candidate_count


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+',
                        help='mmdet configs (paths or mmdet::...)')
    parser.add_argument('--reference', type=int, default=0,
                        help='index of the config the ratios refer to '
                        '(default 0, the first)')
    parser.add_argument('--shape', type=int, nargs='+', default=[640, 640],
                        help='input H W, or one side for a square (default '
                        '640)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--onnxruntime', action='store_true',
                        help='also export each model (mmevit.deploy, '
                        'post-processing inside the graph) and time it in '
                        'onnxruntime (column ort_ms)')
    parser.add_argument('--candidates', type=int, metavar='K',
                        help='set each model\'s score_thr so that K scores '
                        'on the timed image pass it (equal post-processing)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random weights (default 0)')
    parser.add_argument('--json', help='also write the rows to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides merged into every config')
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2) or min(args.shape) < 32:
        parser.error(f'--shape {args.shape}: give H W or one side, each '
                     '>= 32')
    if not 0 <= args.reference < len(args.configs):
        parser.error(f'--reference {args.reference}: choose 0..'
                     f'{len(args.configs) - 1} (the configs\' positions)')
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    if args.candidates is not None and args.candidates < 1:
        parser.error(f'--candidates {args.candidates}: give 1 or more')
    return args


def test_batch(height, width, seed=0):
    """One uint8 image and the meta information the pipeline would give."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                          generator=generator)
    return dict(inputs=[image], data_samples=data_samples('mmdet', height,
                                                          width))


def callables(model, batch):
    """``predict``: test_step as inference runs it; ``network``: tensor mode."""
    data = model.data_preprocessor(batch, False)

    def predict():
        return model.test_step(batch)

    def network():
        return model(data['inputs'], data['data_samples'], mode='tensor')

    return dict(predict=predict, network=network), data


def onnxruntime_callable(model, data, threads, path):
    """Export ``model`` at the input's size to ``path``; a callable running
    the ONNX graph (network and post-processing) in onnxruntime."""
    from mmevit.deploy import export_onnx, export_wrapper
    from mmevit.deploy.runtime import OnnxSession
    inputs = data['inputs']
    export_onnx(export_wrapper('mmdet', model), path, 'mmdet',
                shape=tuple(inputs.shape[2:]), dynamic=())
    session = OnnxSession(path, 'mmdet', num_threads=threads)
    return lambda: session(inputs)


def flops_and_params(model, data):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(data['inputs'], data['data_samples'], mode='tensor')
    params = sum(p.numel() for p in model.parameters())
    return counter.get_total_flops() / 1e9, params / 1e6


def short_name(config):
    return config.split('::')[-1].rsplit('/', 1)[-1].removesuffix('.py')


def run(args):
    torch.set_num_threads(args.threads)
    height, width = (args.shape * 2)[:2]
    batch = test_batch(height, width)
    rows, fns = [], {}
    tmp_dir = tempfile.mkdtemp()
    for config in args.configs:
        torch.manual_seed(args.seed)  # the same random weights every run
        _, _, model = build_model(config, args.cfg_options)
        parts, data = callables(model, batch)
        gflop, params_m = flops_and_params(model, data)
        name = short_name(config)
        rows.append(dict(name=name, gflop=gflop, params_m=params_m))
        if args.candidates:
            rows[-1]['score_thr'], rows[-1]['candidates'] = \
                set_candidate_count(model, data['inputs'], args.candidates)
            print(f"{name}: score_thr {rows[-1]['score_thr']:.6g} leaves "
                  f"{rows[-1]['candidates']} candidates")
        if args.onnxruntime:
            try:
                parts['ort'] = onnxruntime_callable(
                    model, data, args.threads,
                    osp.join(tmp_dir, f'{name}.onnx'))
            except ConfigError as error:  # a head the exporter lacks
                print(f'{name}: no onnxruntime column: {error}')
        for part, fn in parts.items():
            fns[(name, part)] = fn
    with torch.no_grad():
        times = interleaved_latencies(fns, 'cpu', args.warmup, args.repeats)
    medians = {key: statistics.median(seconds) for key, seconds in times.items()}
    shutil.rmtree(tmp_dir)
    reference = rows[args.reference]['name']
    for row in rows:
        for part in ('predict', 'network'):
            row[f'{part}_ms'] = medians[(row['name'], part)] * 1e3
        if args.onnxruntime:
            ort, ref_ort = (medians.get((name, 'ort'), float('nan'))
                            for name in (row['name'], reference))
            row['ort_ms'], row['ort_speedup'] = ort * 1e3, ref_ort / ort
        row['speedup'] = medians[(reference, 'predict')] / medians[
            (row['name'], 'predict')]
        row['network_speedup'] = medians[(reference, 'network')] / medians[
            (row['name'], 'network')]
    return rows, reference


def markdown_table(rows, reference):
    ort = 'ort_ms' in rows[0]
    lines = [f'| model | predict ms | x vs {reference} | network ms | '
             'network x | ' + ('ort ms | ort x | ' if ort else '') +
             'GFLOP | params (M) |', '|---' * (9 if ort else 7) + '|']
    for row in rows:
        ort_cells = (f"{row['ort_ms']:.0f} | {row['ort_speedup']:.2f} | "
                     if ort else '')
        lines.append(
            f"| {row['name']} | {row['predict_ms']:.0f} | "
            f"{row['speedup']:.2f} | {row['network_ms']:.0f} | "
            f"{row['network_speedup']:.2f} | {ort_cells}{row['gflop']:.2f} | "
            f"{row['params_m']:.2f} |")
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    rows, reference = run(args)
    print(markdown_table(rows, reference))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(rows=rows, reference=reference,
                           shape=args.shape, threads=args.threads,
                           repeats=args.repeats, torch=torch.__version__,
                           machine=platform.processor() or platform.machine()),
                      f, indent=2)


if __name__ == '__main__':
    sys.exit(main())
