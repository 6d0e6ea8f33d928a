"""Timing callables side by side: warm-up, device synchronisation,
interleaved rounds, medians."""
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


def time_side_by_side(fns, shape, repeats):
    """Time ``fns`` (the first is the reference) on the CPU with one torch
    thread, one warm-up round and ``repeats`` interleaved rounds, without
    gradients; print one line each with the median and the speed-up over
    the reference.

    Args:
        fns (dict[str, Callable]): Functions to time, by name.
        shape (tuple[int, int]): Input height and width, for the header.
        repeats (int): Measured rounds.

    Returns:
        list[dict]: Per function: ``name``, ``median_ms`` and ``speedup``
        (reference median / this median).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            times = interleaved_latencies(fns, 'cpu', warmup=1,
                                          repeats=repeats)
    finally:
        torch.set_num_threads(threads)
    medians = {name: statistics.median(t) for name, t in times.items()}
    reference = next(iter(medians.values()))
    rows = [dict(name=name, median_ms=median * 1e3,
                 speedup=reference / median)
            for name, median in medians.items()]
    print(f'latency at 1x3x{shape[0]}x{shape[1]}, one thread, median of '
          f'{repeats} interleaved runs:')
    for row in rows:
        print(f"  {row['name']:<26} {row['median_ms']:9.1f} ms  "
              f"({row['speedup']:.2f}x {rows[0]['name']})")
    return rows
