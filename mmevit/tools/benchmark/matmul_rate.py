"""The machine's fp32 matmul rate, timed in the same rounds as the models:
the bound each model's achieved GFLOP/s is compared with."""
import torch

#: The name of the matmul among the timed callables.
MATMUL = 'fp32 matmul'


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
