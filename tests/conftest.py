"""Shared helpers and fixtures of the test suite.

The tools' helper modules live beside the tools (``tools/analysis_tools``,
``tools/data``), outside the installed package; they are put on ``sys.path``
here so tests import them the way the tools do.
"""
import importlib.util
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test` runs one pytest-xdist worker per core: each worker, and the
    # tools it starts, computes on one thread. Two workers with torch's default
    # of one thread per core would oversubscribe the cores, and OpenMP threads
    # waiting for a core slow a small model's training several times over.
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)

for folder in ('tools/analysis_tools', 'tools/data'):
    if osp.join(ROOT, folder) not in sys.path:
        sys.path.insert(0, osp.join(ROOT, folder))

from official_baseline import randomize_weights  # noqa: E402, F401 (for the tests)
from toy_shapes import make_coco_toy  # noqa: E402

from mmevit.stack import EXPORT_MIN_TORCH, torch_at_least  # noqa: E402

#: Marks a test that exports ONNX files (the exporter needs a newer torch
#: than the rest of mmevit; tests/test_stack.py checks its error on older).
needs_exporter = pytest.mark.skipif(
    not torch_at_least(EXPORT_MIN_TORCH),
    reason=f'the ONNX exporter needs torch>={EXPORT_MIN_TORCH}')


def run_tool(*args, check=True, timeout=600, env=None):
    """Run ``python ARGS`` from the repository root (as a user runs the
    tools) and return the finished process.

    Args:
        *args: The tool (path relative to the root) and its arguments.
        check (bool): Fail the test, showing the output's end, when the
            exit status is not 0. Defaults to True.
        timeout (int): Seconds. Defaults to 600.
        env (dict, optional): Extra environment variables.
    """
    result = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT,
                            text=True, capture_output=True, timeout=timeout,
                            env=dict(os.environ, **(env or {})))
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n'
                             f'{result.stderr[-3000:]}')
    return result


def load_tool(name):
    """``tools/NAME.py`` as a module, to call its functions in this process."""
    spec = importlib.util.spec_from_file_location(
        f'tool_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool_in_process(monkeypatch, name, *argv):
    """``python tools/NAME.py ARGV`` in this process (output goes to the
    test's capsys); returns the exit status."""
    monkeypatch.setattr(sys, 'argv', [f'{name}.py', *map(str, argv)])
    try:
        return load_tool(name).main() or 0
    except SystemExit as exit_info:
        return exit_info.code


def free_port():
    """A TCP port on 127.0.0.1 that is free now (for a distributed run)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def failure_lines(log):
    """The lines of a failed run's log that say why (every rank's), then
    its end."""
    why = [line for line in log.splitlines() if re.search(
        r'Error|error:|terminate|[Aa]bort|Signal|Traceback', line)]
    return '\n'.join(why[:60]) + '\n...\n' + log[-2000:]


@pytest.fixture(scope='session')
def mmevit_wheel(tmp_path_factory):
    """The wheel `pip wheel .` builds, from a copy of the sources (setup.py
    rewrites mmevit/.mim in the tree it builds)."""
    src = tmp_path_factory.mktemp('src') / 'mmevit'

    def skip(folder, names):
        at_root = {'.git', 'data', 'work_dirs', 'build', 'dist'}
        return [n for n in names if n in ('.mim', '__pycache__')
                or n.endswith(('.egg-info', '_cache'))
                or (folder == ROOT and (n in at_root
                                        or n.startswith('.venv')))]

    shutil.copytree(ROOT, src, ignore=skip)
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


# The released m0 checkpoint uses q kernels 5, 5, 5, 5 (the official
# classification code); the official downstream file lists 7, 5, 3, 3.
_RELEASED_KERNELS = {'m0': [5, 5, 5, 5]}


def official_backbone(arch, window_size=(7, 7, 7), seed=None, **kwargs):
    """The official downstream backbone (tests/official transcription) for
    ``arch``, with weights randomised when ``seed`` is given."""
    from official import efficientvit as official
    cfg = dict(getattr(official, f'EfficientViT_{arch}'))
    cfg['window_size'] = list(window_size)
    cfg['kernels'] = _RELEASED_KERNELS.get(arch, cfg['kernels'])
    cfg.update(kwargs)
    model = official.EfficientViT(**cfg)
    if seed is not None:
        randomize_weights(model, seed)
    return model


def official_loaded_state(arch, checkpoint, window_size):
    """The state dict the official downstream backbone with ``window_size``
    holds after its own ``init_weights`` loaded ``checkpoint`` (the
    reference for bias-table resizing)."""
    model = official_backbone(arch, window_size=window_size)
    model.init_weights(pretrained=str(checkpoint))
    return model.state_dict()
