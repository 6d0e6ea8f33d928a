"""The one way mmevit times things: callables side by side, warm-up
rounds discarded, the device synchronised around each call, rounds
interleaved, medians reported."""
import statistics
import time

import torch


def synchronize(device):
    """Wait for queued kernels on ``device`` (a no-op on the CPU).

    Args:
        device (torch.device | str): Device the measured work runs on.
    """
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def time_once(fn, device):
    """Seconds taken by one call of ``fn``, synchronised on ``device``."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved_latencies(fns, device, warmup=3, repeats=10):
    """Time several callables side by side.

    Every round calls each function once, in turn, so slow drifts of the
    machine (other jobs, clock changes) affect all of them alike and their
    ratios are meaningful. Warm-up rounds are run first and discarded.

    Args:
        fns (dict[str, Callable]): Functions to time, by name.
        device (torch.device | str): Device to synchronise.
        warmup (int): Discarded rounds. Defaults to 3.
        repeats (int): Measured rounds. Defaults to 10.

    Returns:
        dict[str, list[float]]: Seconds per call, one entry per round.
    """
    if repeats < 1:
        raise ValueError(f'repeats={repeats} must be at least 1')
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(time_once(fn, device))
    return times


def summarize(seconds, batch_size=1):
    """Median latency and throughput of a list of per-call times.

    Args:
        seconds (list[float]): Per-call times.
        batch_size (int): Images per call. Defaults to 1.

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
    return dict(latency_ms=median * 1e3, latency_iqr_ms=(q3 - q1) * 1e3,
                throughput=batch_size / median, repeats=len(seconds))
