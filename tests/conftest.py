"""Fixtures of the test suite (shared helpers: tests/helpers.py)."""
import os
import subprocess
import sys

import pytest
import torch

from mmevit.tools.toy_shapes import make_coco_toy
from tests.helpers import copy_sources

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test` runs one pytest-xdist worker per core: each worker, and the
    # tools it starts, computes on one thread. Two workers with torch's default
    # of one thread per core would oversubscribe the cores, and OpenMP threads
    # waiting for a core slow a small model's training several times over.
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)

@pytest.fixture(scope='session')
def mmevit_wheel(tmp_path_factory):
    """The wheel `pip wheel .` builds, from a copy of the sources (setup.py
    rewrites mmevit/.mim in the tree it builds)."""
    src = copy_sources(tmp_path_factory.mktemp('src') / 'mmevit')
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '.', '--no-deps',
                    '--no-build-isolation', '--quiet', '-w', str(out)],
                   cwd=src, check=True, capture_output=True, timeout=300)
    [path] = out.glob('mmevit-*.whl')
    return path

@pytest.fixture(scope='session')
def toy_coco(tmp_path_factory):
    """A tiny COCO-format shapes set (8 train, 4 val images)."""
    root = tmp_path_factory.mktemp('toy_coco')
    return make_coco_toy(str(root), num_train=8, num_val=4, min_size=96,
                         max_size=160, show_progress=False)


@pytest.fixture(autouse=True)
def no_logging_to_closed_streams():
    """mmengine's loggers live as long as the process and keep the stream
    they were made with: one made in a test that captured output (capsys)
    would write a 'Logging error' into a later test's output once that
    capture is closed. After each test, such handlers go."""
    yield
    from mmengine.logging import MMLogger
    for logger in MMLogger._instance_dict.values():
        for handler in list(logger.handlers):
            if getattr(getattr(handler, 'stream', None), 'closed', False):
                logger.removeHandler(handler)
