"""Checks of what the user asks the measuring tools to run: argument types
(image sizes: :func:`mmevit.tools.image_shape`), device, input size and
whether a batch fits in memory. Each failure is a one-line
:class:`mmevit.errors.ConfigError`.

The memory estimate runs the model twice on a reduced input (one image, at
most :data:`PROBE_PIXELS` pixels), records the peak of live tensor storage
with a dispatch mode, and scales it by the batch size and the pixel count:
activation memory of convolutional and windowed-attention networks grows
linearly with both.
"""
import argparse
import contextlib
import math
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from mmevit.errors import ConfigError

STRIDE_PROBE = 512
PROBE_PIXELS = 256 * 256
SAFETY_FACTOR = 1.25  # allocator slack, library workspaces


def positive_int(text):
    """argparse type: an int of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an int') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'{value} must be at least 1')
    return value


def resolve_device(name):
    """``torch.device`` for ``name`` ('cpu', 'cuda', 'cuda:1'), checked.

    Raises:
        ConfigError: Unknown device, or CUDA not usable here.
    """
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f'unknown device {name!r}; choose cpu or cuda[:N]') from None
    if device.type == 'cpu':
        return device
    if device.type != 'cuda':
        raise ConfigError(
            f'device {name!r} is not supported; choose cpu or cuda[:N]')
    if not torch.cuda.is_available():
        raise ConfigError(
            f'device {name!r} requested but CUDA is not available here '
            f'(torch {torch.__version__}); use --device cpu')
    if (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f'device {name!r} does not exist; this machine has '
            f'{torch.cuda.device_count()} CUDA device(s)')
    return device


def coarsest_stride(features_fn, device):
    """Largest output stride of a feature extractor (image -> maps), found
    by running it on a STRIDE_PROBE x STRIDE_PROBE image."""
    x = torch.zeros(1, 3, STRIDE_PROBE, STRIDE_PROBE, device=device)
    with torch.inference_mode():
        maps = features_fn(x)
    return max(STRIDE_PROBE // m.shape[-2] for m in maps)


def check_input_size(name, height, width, min_size):
    """Refuse inputs smaller than the coarsest output stride.

    The models run on any size (windows and strided convs pad), but below
    one cell of the coarsest feature map the coarse levels see nothing but
    padding: such timings and FLOPs describe no real workload.

    Raises:
        ConfigError: ``height`` or ``width`` below ``min_size``.
    """
    if height < 1 or width < 1:
        raise ConfigError(
            f'input size {height}x{width} must be positive')
    if min(height, width) < min_size:
        raise ConfigError(
            f'input size {height}x{width} is below the minimum '
            f'{min_size}x{min_size} for {name}: its coarsest output has '
            f'stride {min_size}')


@contextlib.contextmanager
def out_of_memory_as_error(what):
    """Turn an allocation failure inside the block into a one-line
    :class:`ConfigError` naming ``what`` was being run."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise ConfigError(
            f'{what} ran out of device memory; use a smaller --batch-size '
            'or --shape') from None
    except RuntimeError as err:
        if 'allocate' not in str(err) and 'memory' not in str(err):
            raise
        raise ConfigError(
            f'{what} ran out of memory; use a smaller --batch-size or '
            '--shape') from None


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
        for t in tree_flatten(out)[0]:
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
        fn(probe)  # one-off allocations happen in the first call
        with tracker:
            fn(probe)
    scale = batch_size * height * width / (ph * pw)
    inputs = batch_size * 3 * height * width * 4
    return int(tracker.peak * scale * SAFETY_FACTOR) + inputs


def check_fits(name, fn, batch_size, height, width, device):
    """Raise :class:`ConfigError` if ``fn`` would not fit in memory.

    Args:
        name (str): The part, for the message.
        fn (Callable): The timed part.
        batch_size, height, width (int): The real input.
        device (torch.device | str): Where ``fn`` runs.
    """
    needed = estimate_peak_bytes(fn, batch_size, height, width, device)
    free = available_bytes(device)
    if needed > free:
        raise ConfigError(
            f'batch {batch_size} x 3 x {height} x {width} does not fit: '
            f'{name} needs about {needed / 2**30:.1f} GiB on {device}, '
            f'{free / 2**30:.1f} GiB is free; use a smaller --batch-size '
            'or --shape')
