"""Latency of model parts, timed side by side (:mod:`mmevit.tools.latency`:
warm-up, device synchronisation, interleaved repeats), with the machine's
fp32 matmul rate as the bound that each part's achieved GFLOP/s is compared
with."""
import dataclasses
import os.path as osp
import statistics
from typing import Callable

import torch

from mmevit.models import fold_batch_norm
from mmevit.tools import build_model, interleaved_latencies
from mmevit.tools.benchmark.flops import count_flops
from mmevit.tools.benchmark.input_checks import (
    check_fits,
    check_input_size,
    coarsest_stride,
    out_of_memory_as_error,
)
from mmevit.tools.benchmark.models import build_backbone, check_arch, model_parts
from mmevit.tools.benchmark.official_baseline import (
    VARIANTS,
    build_variants,
    check_official_runs,
    output_differences,
)

MATMUL = 'fp32 matmul'


def summarize(seconds, batch_size):
    """Median latency and throughput of a list of per-call times.

    Args:
        seconds (list[float]): Per-call times.
        batch_size (int): Images per call.

    Returns:
        dict: ``latency_ms`` (median), ``latency_iqr_ms`` (inter-quartile
        range, a spread measure), ``throughput`` (images/s at the median)
        and ``repeats``.
    """
    median = statistics.median(seconds)
    if len(seconds) >= 4:
        q1, _, q3 = statistics.quantiles(seconds, n=4)
    else:
        q1 = q3 = median
    return dict(latency_ms=median * 1e3,
                latency_iqr_ms=(q3 - q1) * 1e3,
                throughput=batch_size / median,
                repeats=len(seconds))


def matmul_size(device):
    """Side of the square fp32 matmul used to measure the peak rate: large
    enough to reach the BLAS library's top speed, small enough to take about
    0.1 s on a 2-core CPU."""
    return 4096 if torch.device(device).type == 'cuda' else 1536


def make_matmul(device, size=None):
    """A callable doing one ``size x size`` fp32 matmul, and its FLOP count.

    Args:
        device (torch.device | str): Where to multiply.
        size (int, optional): Matrix side. Defaults to :func:`matmul_size`.

    Returns:
        tuple[Callable, int]: The function and ``2 * size**3`` FLOP.
    """
    size = size or matmul_size(device)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    out = torch.empty(size, size, device=device)

    def matmul():
        torch.mm(a, b, out=out)

    return matmul, 2 * size**3


@dataclasses.dataclass
class Target:
    """One thing to time.

    Args:
        name (str): Row label, e.g. ``EfficientViT-M4: backbone``.
        fn (Callable): ``fn(images)`` in eager mode: FLOPs and the memory
            estimate are taken on it.
        features_fn (Callable): ``images -> feature maps``, to find the
            coarsest stride (the minimum input size).
        timed_fn (Callable, optional): What is timed, e.g. the
            ``torch.compile`` d ``fn``. Defaults to ``fn``.
    """
    name: str
    fn: Callable
    features_fn: Callable
    timed_fn: Callable = None

    def __post_init__(self):
        if self.timed_fn is None:
            self.timed_fn = self.fn


def arch_targets(arch, device, deploy=False, use_compile=False):
    """The backbone of one arch as a :class:`Target`."""
    model = build_backbone(arch).to(device)
    if deploy:
        fold_batch_norm(model)
    return [Target(f'EfficientViT-{arch.upper()}: backbone', model, model,
                   torch.compile(model) if use_compile else None)]


def config_targets(config, parts, device, deploy=False, use_compile=False,
                   cfg_options=None):
    """The requested parts of a config's model as :class:`Target` s."""
    _, task, model = build_model(config, cfg_options)
    model = model.to(device)
    if deploy:
        fold_batch_norm(model)
    fns = model_parts(model, task, parts)
    stem = osp.splitext(osp.basename(config.split('::')[-1]))[0]
    features = {'backbone': model.backbone,
                'backbone+neck': model.extract_feat,
                'model': model.extract_feat}
    return [
        Target(f'{stem}: {part}', fn, features[part],
               torch.compile(fn) if use_compile else None)
        for part, fn in fns.items()
    ]


def _measure_shape(targets, batch_size, height, width, device, warmup,
                   repeats, seed):
    """Rows for every target at one input shape, timed interleaved with
    the fp32 matmul."""
    strides = {}  # targets may share their feature extractor
    for target in targets:
        key = id(target.features_fn)
        if key not in strides:
            strides[key] = coarsest_stride(target.features_fn, device)
        check_input_size(target.name, height, width, strides[key])
        check_fits(target.name, target.fn, batch_size, height, width, device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, height, width, generator=gen).to(device)
    flops = {t.name: count_flops(t.fn, x[:1])['flops'] * batch_size
             for t in targets}
    matmul, matmul_flop = make_matmul(device)
    fns = {t.name: (lambda fn=t.timed_fn: fn(x)) for t in targets}
    fns[MATMUL] = matmul
    what = f'batch {batch_size} x 3 x {height} x {width}'
    with torch.inference_mode(), out_of_memory_as_error(what):
        times = interleaved_latencies(fns, device, warmup, repeats)
    peak = matmul_flop / summarize(times[MATMUL], 1)['latency_ms'] / 1e6
    rows = []
    for target in targets:
        row = dict(name=target.name, shape=[batch_size, 3, height, width],
                   **summarize(times[target.name], batch_size))
        row['gflop'] = flops[target.name] / 1e9
        row['gflops_per_s'] = row['gflop'] / row['latency_ms'] * 1e3
        row['matmul_gflops_per_s'] = peak
        row['fraction_of_matmul'] = row['gflops_per_s'] / peak
        rows.append(row)
    return rows


def benchmark(targets, shapes, batch_size, device, warmup=3, repeats=10,
              seed=0):
    """Time every target at every shape.

    Targets are timed side by side (interleaved rounds), together with an
    fp32 matmul whose rate is reported next to each target's achieved
    GFLOP/s; ratios between rows of one shape are therefore meaningful.

    Args:
        targets (list[Target]): What to time.
        shapes (Sequence[tuple[int, int]]): (height, width) of the input.
        batch_size (int): Images per call.
        device (torch.device): Device of the targets.
        warmup (int): Discarded rounds per shape. Defaults to 3.
        repeats (int): Measured rounds per shape. Defaults to 10.
        seed (int): Seed of the random input. Defaults to 0.

    Returns:
        list[dict]: One row per target and shape.
    """
    rows = []
    for height, width in shapes:
        rows += _measure_shape(targets, batch_size, height, width, device,
                               warmup, repeats, seed)
    return rows


def compare_official(arch, shape, batch_size, device, warmup=3, repeats=10,
                     seed=0):
    """Time mmevit against the official algorithm with identical weights.

    The four :data:`VARIANTS` run interleaved; each row gets its speed-up
    over the eager ``official`` reference and the max relative difference
    of its outputs from the reference's (on a second random input).

    Args:
        arch (str): 'm0'..'m5'.
        shape (tuple[int, int]): Input (height, width).
        batch_size (int): Images per call.
        device (torch.device): Where to run.
        warmup (int): Discarded rounds. Defaults to 3.
        repeats (int): Measured rounds. Defaults to 10.
        seed (int): Seed of the weights and inputs. Defaults to 0.

    Returns:
        list[dict]: One row per variant.
    """
    height, width = shape
    check_official_runs(height, width)
    models = {name: model.to(device) for name, model in
              build_variants(check_arch(arch), seed=seed).items()}
    # Same network, same strides: one feature extractor finds the minimum.
    targets = [Target(f'{arch.upper()} {name}', model, models['mmevit deploy'])
               for name, model in models.items()]
    rows = _measure_shape(targets, batch_size, height, width, device,
                          warmup, repeats, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch_size, 3, height, width, generator=gen).to(device)
    diffs = output_differences(models, x)
    base = rows[0]['latency_ms']
    for row, variant in zip(rows, VARIANTS):
        row['variant'] = variant
        row['speedup_vs_official'] = base / row['latency_ms']
        row['max_rel_diff_vs_official'] = diffs[variant]
    return rows
