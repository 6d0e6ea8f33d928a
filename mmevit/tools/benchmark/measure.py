"""Time every (subject, part, path) side by side, at each input size and
thread count, and give each row its ratios.

One measuring method: at one input size and thread count every callable
runs once per round, in turn (:func:`interleaved_latencies`), so drifts of a
shared machine hit all rows alike; the median over the rounds is reported.
Rows of one round compare directly: ``x_eager_fp32`` is the row's speed-up
over the same model and part in eager fp32, ``x_reference`` over the
reference model on the same part and path. An fp32 matmul runs in the same
rounds; ``fraction_of_matmul`` is a row's achieved GFLOP/s over its rate.
"""
import contextlib
import tempfile

import torch

from mmevit.errors import ConfigError
from mmevit.tools.benchmark.fair_load import (
    has_dense_head,
    has_instance_masks,
    set_candidate_count,
    set_mask_count,
)
from mmevit.tools.benchmark.flops import count_flops, count_parameters
from mmevit.tools.benchmark.input_checks import (
    check_fits,
    check_input_size,
    coarsest_stride,
    out_of_memory_as_error,
)
from mmevit.tools.benchmark.matmul_rate import MATMUL, make_matmul
from mmevit.tools.benchmark.timing import interleaved_latencies, summarize


@contextlib.contextmanager
def torch_threads(threads):
    """torch's intra-op thread count set to ``threads`` inside the block
    (unchanged for None)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def set_candidates(subjects, x, candidates, masks=None):
    """Give every dense detector among ``subjects`` the same post-processing
    load on ``x`` (:func:`set_candidate_count`) and, with ``masks``, every
    instance-segmentation head that many masks (:func:`set_mask_count`);
    print what each got.

    Returns:
        dict[str, dict]: ``score_thr``, ``candidates`` (and ``masks``) by
        subject.
    """
    loads = {}
    for subject in subjects:
        if subject.task and has_dense_head(subject.model):
            load = dict(zip(('score_thr', 'candidates'), set_candidate_count(
                subject.model, x[:1], candidates)))
            if masks and has_instance_masks(subject.model):
                load['masks'] = set_mask_count(subject.model, x[:1],
                                               subject.samples(x[:1]), masks)
            loads[subject.name] = load
            print(f'{subject.name}: ' + ', '.join(
                f'{key} {value:.6g}' for key, value in load.items()))
        elif subject.task:
            print(f'{subject.name}: no dense bbox_head, timed with its '
                  'test_cfg')
    return loads


def _check_eager(subjects, parts, batch_size, height, width, device):
    """Refuse an input below a part's coarsest stride or too big for memory
    (one-line :class:`ConfigError`), before it is made."""
    strides = {}
    for subject in subjects:
        for part in subject.parts(parts):
            features = subject.features(part)
            if id(features) not in strides:
                strides[id(features)] = coarsest_stride(features, device)
            label = f'{subject.name}: {part}'
            check_input_size(label, height, width, strides[id(features)])
            check_fits(label, subject.eager(part), batch_size, height, width,
                       device)


def _ratios(rows, reference):
    """Add ``x_eager_fp32`` and, with a ``reference`` subject name,
    ``x_reference`` to rows of one round."""
    latency = {(r['model'], r['part'], r['path']): r['latency_ms']
               for r in rows}
    for row in rows:
        eager = latency.get((row['model'], row['part'], 'eager-fp32'))
        if eager:
            row['x_eager_fp32'] = eager / row['latency_ms']
        ref = latency.get((reference, row['part'], row['path']))
        if ref:
            row['x_reference'] = ref / row['latency_ms']


def measure(subjects, parts, paths, shapes, threads=(None, ), device='cpu',
            batch_size=1, warmup=3, repeats=10, seed=0, reference=None,
            candidates=None, calib_images=2, use_compile=False, masks=None):
    """Time every subject's parts on every path, side by side.

    Args:
        subjects (list[Subject]): The models.
        parts (Sequence[str]): Parts of the detectors/segmentors (an arch
            has only its backbone).
        paths (Sequence[str]): Eager and onnxruntime paths.
        shapes (Sequence[tuple[int, int]]): Input (height, width).
        threads (Sequence[int | None]): Thread counts of torch and
            onnxruntime; None keeps torch's and onnxruntime's defaults.
            Defaults to (None, ).
        device (torch.device | str): Device of the eager paths. Defaults to
            'cpu'.
        batch_size (int): Images per call. Defaults to 1.
        warmup (int): Discarded rounds. Defaults to 3.
        repeats (int): Measured rounds. Defaults to 10.
        seed (int): Seed of the inputs. Defaults to 0.
        reference (str, optional): The subject that ``x_reference`` refers
            to. Defaults to None.
        candidates (int, optional): Give every dense detector this many
            post-processing candidates at each input size. Defaults to None.
        calib_images (int): Random calibration batches of int8 files.
            Defaults to 2.
        use_compile (bool): Wrap the eager callables in ``torch.compile``.
            Defaults to False.
        masks (int, optional): With ``candidates``, give every
            instance-segmentation model (RTMDet-Ins) this many final
            detections, each with its mask. Defaults to None.

    Returns:
        list[dict]: One row per subject, part, path, thread count and size.
    """
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for height, width in shapes:
            _check_eager(subjects, parts, batch_size, height, width, device)
            gen = torch.Generator().manual_seed(seed)
            x = torch.randn(batch_size, 3, height, width,
                            generator=gen).to(device)
            loads = set_candidates(subjects, x, candidates, masks) \
                if candidates else {}
            info = _row_info(subjects, parts, x, loads)
            for count in threads:
                with torch_threads(count):
                    rows += _measure_round(subjects, parts, paths, x, count,
                                           device, warmup, repeats, seed,
                                           calib_images, use_compile,
                                           work_dir, info, reference)
    return rows


def _row_info(subjects, parts, x, loads):
    """FLOPs (2 per multiply-add, of the eager fp32 part on one image,
    times the batch), parameters and the post-processing load of each
    subject's parts."""
    info = {}
    for subject in subjects:
        for part in subject.parts(parts):
            flops = count_flops(subject.eager(part), x[:1])['flops']
            info[(subject.name, part)] = dict(
                gflop=flops * len(x) / 1e9,
                params_m=count_parameters(subject.module(part)) / 1e6)
            if subject.name in loads and part == 'model':
                info[(subject.name, part)].update(loads[subject.name])
    return info


def _measure_round(subjects, parts, paths, x, threads, device, warmup,
                   repeats, seed, calib_images, use_compile, work_dir, info,
                   reference):
    fns = {}
    for subject in subjects:
        for part in subject.parts(parts):
            for path in paths:
                if not subject.has_path(part, path):
                    continue
                try:
                    fn = subject.timed(part, path, x, threads or 0, work_dir,
                                       calib_images, seed)
                except ConfigError as error:  # e.g. a head the exporter lacks
                    if not path.startswith('ort'):
                        raise
                    print(f'{subject.name}: no {part} {path} row: {error}')
                    continue
                if use_compile and path.startswith('eager'):
                    fn = torch.compile(fn)
                fns[(subject.name, part, path)] = fn
    matmul, matmul_flop = make_matmul(device)
    fns[MATMUL] = matmul
    what = f'batch {len(x)} x 3 x {x.shape[2]} x {x.shape[3]}'
    with torch.inference_mode(), out_of_memory_as_error(what):
        times = interleaved_latencies(fns, device, warmup, repeats)
    rate = matmul_flop / summarize(times.pop(MATMUL))['latency_ms'] / 1e6
    rows = []
    for (name, part, path), seconds in times.items():
        row = dict(model=name, part=part, path=path,
                   threads=threads or torch.get_num_threads(),
                   shape=list(x.shape), **summarize(seconds, len(x)),
                   **info[(name, part)])
        row['gflops_per_s'] = row['gflop'] / row['latency_ms'] * 1e3
        row['matmul_gflops_per_s'] = rate
        row['fraction_of_matmul'] = row['gflops_per_s'] / rate
        rows.append(row)
    _ratios(rows, reference)
    return rows
