"""How `make install` builds mmcv's compiled ops on this machine.

mmcv 2.1.0's setup.py compiles its CUDA ops whenever
``torch.cuda.is_available()`` (``FORCE_CUDA=0`` does not stop it), which
needs the CUDA toolkit's ``nvcc``. So a machine with a usable GPU builds
CUDA ops when ``nvcc`` is found and stops at once, with one line saying
what to install, when it is not; every other machine builds CPU ops.

Run by scripts/install.sh, which reads the printed ``KEY=VALUE`` lines:
``MMCV_OPS`` (``cpu`` or ``cuda``), ``FORCE_CUDA`` and ``CUDA_HOME`` for
the build, ``CACHE_SUFFIX`` for the wheel cache folder (a CUDA wheel must
not be mistaken for a CPU one built against the same torch). Exits 1 with
one ``error:`` line when a GPU is there and no ``nvcc`` is.
"""
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from typing import Optional

#: OpenMMLab's prebuilt mmcv 2.1.0 CUDA wheels exist for these torch
#: versions only (major.minor).
PREBUILT_TORCH = ('2.0', '2.1')


@dataclass
class Probe:
    """What decides the build: the installed torch and the CUDA toolkit.

    Args:
        torch_version (str): ``torch.__version__``.
        torch_cuda (str | None): ``torch.version.cuda`` (None for a CPU
            build of torch).
        cuda_available (bool): ``torch.cuda.is_available()``.
        cuda_home (str | None): the CUDA toolkit folder holding
            ``bin/nvcc``, or None when none is found.
    """
    torch_version: str
    torch_cuda: Optional[str]
    cuda_available: bool
    cuda_home: Optional[str]


def find_cuda_home(environ=os.environ, which=shutil.which):
    """The CUDA toolkit folder, as torch's extension builder finds it:
    ``CUDA_HOME`` or ``CUDA_PATH``, else the folder above the ``nvcc`` on
    PATH, else ``/usr/local/cuda``; None unless it holds ``bin/nvcc``."""
    candidates = [environ.get('CUDA_HOME'), environ.get('CUDA_PATH')]
    nvcc = which('nvcc')
    if nvcc:
        candidates.append(osp.dirname(osp.dirname(osp.realpath(nvcc))))
    candidates.append('/usr/local/cuda')
    for home in candidates:
        if home and osp.isfile(osp.join(home, 'bin', 'nvcc')):
            return home
    return None


def probe():
    import torch
    return Probe(torch.__version__, torch.version.cuda,
                 torch.cuda.is_available(), find_cuda_home())


def missing_nvcc_message(p):
    """One line for a GPU machine without nvcc: what to install."""
    torch_minor = '.'.join(p.torch_version.split('+')[0].split('.')[:2])
    line = (f'this machine has a CUDA GPU and torch {p.torch_version} '
            f'(CUDA {p.torch_cuda}), so mmcv 2.1.0 compiles its CUDA ops, '
            f'which needs nvcc: install the CUDA {p.torch_cuda} toolkit and '
            'set CUDA_HOME to it')
    if torch_minor in PREBUILT_TORCH:
        cu = 'cu' + (p.torch_cuda or '').replace('.', '')
        line += (f', or install OpenMMLab\'s prebuilt wheel first (pip install '
                 f'mmcv==2.1.0 -f https://download.openmmlab.com/mmcv/dist/'
                 f'{cu}/torch{torch_minor}/index.html), which make install keeps')
    return line


def build_plan(p):
    """The build settings for probe ``p``.

    Returns:
        dict: ``MMCV_OPS``, ``FORCE_CUDA``, ``CUDA_HOME`` and
        ``CACHE_SUFFIX``.

    Raises:
        SystemExit: A GPU is usable and no nvcc is found (one line).
    """
    if not p.cuda_available:
        return dict(MMCV_OPS='cpu', FORCE_CUDA='0', CUDA_HOME='',
                    CACHE_SUFFIX='')
    if p.cuda_home is None:
        raise SystemExit('error: ' + missing_nvcc_message(p))
    return dict(MMCV_OPS='cuda', FORCE_CUDA='1', CUDA_HOME=p.cuda_home,
                CACHE_SUFFIX=f'-cuda{p.torch_cuda}')


def main():
    for key, value in build_plan(probe()).items():
        print(f'{key}={value}')


if __name__ == '__main__':
    main()
