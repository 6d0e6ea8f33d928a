"""Will a batch fit? Estimate peak activation memory before running it.

The estimate runs the model twice on a reduced input (one image, at most
:data:`PROBE_PIXELS` pixels), records the peak of live tensor storage with a
dispatch mode, and scales it by the batch size and the pixel count: activation
memory of convolutional and windowed-attention networks grows linearly with
both.
"""
import math
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .errors import BenchmarkInputError

PROBE_PIXELS = 256 * 256
SAFETY_FACTOR = 1.25  # allocator slack, library workspaces


class PeakStorageTracker(TorchDispatchMode):
    """Track the peak bytes of tensor storage created by the ops it sees."""

    def __init__(self):
        super().__init__()
        self.live = {}
        self.current = self.peak = 0

    def _release(self, ptr):
        self.current -= self.live.pop(ptr, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor) or t.device.type == 'meta':
                continue
            ptr = t.untyped_storage().data_ptr()
            if ptr in self.live:
                continue
            self.live[ptr] = t.untyped_storage().nbytes()
            self.current += self.live[ptr]
            self.peak = max(self.peak, self.current)
            weakref.finalize(t, self._release, ptr)
        return out


def available_bytes(device):
    """Free memory on ``device``: MemAvailable (Linux) or free CUDA memory."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.mem_get_info(device)[0]
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('MemAvailable missing from /proc/meminfo')


def probe_shape(height, width):
    """The reduced (h, w) used to estimate memory for a height x width
    input: the same aspect ratio, at most PROBE_PIXELS pixels."""
    scale = min(1., math.sqrt(PROBE_PIXELS / (height * width)))
    return max(1, round(height * scale)), max(1, round(width * scale))


def estimate_peak_bytes(fn, batch_size, height, width, device):
    """Estimated peak memory of ``fn`` on a batch_size x 3 x height x width
    input (input included).

    Args:
        fn (Callable): The timed part.
        batch_size, height, width (int): The real input.
        device (torch.device | str): Where ``fn`` runs.

    Returns:
        int: Bytes.
    """
    ph, pw = probe_shape(height, width)
    probe = torch.zeros(1, 3, ph, pw, device=device)
    tracker = PeakStorageTracker()
    with torch.inference_mode():
        fn(probe)  # fills one-off caches (folded weights, bias tables)
        with tracker:
            fn(probe)
    scale = batch_size * height * width / (ph * pw)
    inputs = batch_size * 3 * height * width * 4
    return int(tracker.peak * scale * SAFETY_FACTOR) + inputs


def check_fits(name, fn, batch_size, height, width, device):
    """Raise :class:`BenchmarkInputError` if ``fn`` would not fit in memory.

    Args:
        name (str): The part, for the message.
        fn (Callable): The timed part.
        batch_size, height, width (int): The real input.
        device (torch.device | str): Where ``fn`` runs.
    """
    needed = estimate_peak_bytes(fn, batch_size, height, width, device)
    free = available_bytes(device)
    if needed > free:
        raise BenchmarkInputError(
            f'batch {batch_size} x 3 x {height} x {width} does not fit: '
            f'{name} needs about {needed / 2**30:.1f} GiB on {device}, '
            f'{free / 2**30:.1f} GiB is free; use a smaller --batch-size '
            'or --shape')
