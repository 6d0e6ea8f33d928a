"""Validation of what the user asks the tools to run: device, input size,
memory; each failure is a :class:`BenchmarkInputError` with one line."""
import contextlib

import torch

from .errors import BenchmarkInputError

STRIDE_PROBE = 512


def resolve_device(name):
    """``torch.device`` for ``name`` ('cpu', 'cuda', 'cuda:1'), checked.

    Raises:
        BenchmarkInputError: Unknown device, or CUDA not usable here.
    """
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BenchmarkInputError(
            f'unknown device {name!r}; choose cpu or cuda[:N]') from None
    if device.type == 'cpu':
        return device
    if device.type != 'cuda':
        raise BenchmarkInputError(
            f'device {name!r} is not supported; choose cpu or cuda[:N]')
    if not torch.cuda.is_available():
        raise BenchmarkInputError(
            f'device {name!r} requested but CUDA is not available here '
            f'(torch {torch.__version__}); use --device cpu')
    if (device.index or 0) >= torch.cuda.device_count():
        raise BenchmarkInputError(
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
        BenchmarkInputError: ``height`` or ``width`` below ``min_size``.
    """
    if height < 1 or width < 1:
        raise BenchmarkInputError(
            f'input size {height}x{width} must be positive')
    if min(height, width) < min_size:
        raise BenchmarkInputError(
            f'input size {height}x{width} is below the minimum '
            f'{min_size}x{min_size} for {name}: its coarsest output has '
            f'stride {min_size}')


@contextlib.contextmanager
def out_of_memory_as_error(what):
    """Turn an allocation failure inside the block into a one-line
    :class:`BenchmarkInputError` naming ``what`` was being run."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise BenchmarkInputError(
            f'{what} ran out of device memory; use a smaller --batch-size '
            'or --shape') from None
    except RuntimeError as err:
        if 'allocate' not in str(err) and 'memory' not in str(err):
            raise
        raise BenchmarkInputError(
            f'{what} ran out of memory; use a smaller --batch-size or '
            '--shape') from None
