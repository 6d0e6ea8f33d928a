"""Helpers the test modules share: running the tools, the exporter's skip
marker, the official reference backbone, and the toy configs with their
options for generated data."""
import importlib.util
import json
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

import pytest

from mmevit.stack import EXPORT_MIN_TORCH, torch_at_least
from mmevit.tools.benchmark.official_baseline import randomize_weights

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RETINA_TOY = osp.join(ROOT, 'configs/toy/retinanet_efficientvit_m0_toy.py')
FPN_TOY = osp.join(ROOT, 'configs/toy/fpn_efficientvit_m0_toy_ade20k.py')
MASK_TOY = osp.join(ROOT, 'configs/toy/mask_rcnn_efficientvit_m0_toy.py')

#: Marks a test that exports ONNX files (the exporter needs a newer torch
#: than the rest of mmevit; tests/test_stack.py checks its error on older).
EXPORTER_SKIP_REASON = f'the ONNX exporter needs torch>={EXPORT_MIN_TORCH}'
needs_exporter = pytest.mark.skipif(not torch_at_least(EXPORT_MIN_TORCH),
                                    reason=EXPORTER_SKIP_REASON)


def skip_module_without_exporter():
    """Skip the calling test module (before its exporter imports) on a
    torch older than the exporter's."""
    if not torch_at_least(EXPORT_MIN_TORCH):
        pytest.skip(EXPORTER_SKIP_REASON, allow_module_level=True)


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
    """``tools/NAME.py`` as a module, to call its functions in this process
    (``name`` e.g. ``test`` or ``analysis_tools/benchmark``)."""
    spec = importlib.util.spec_from_file_location(
        'tool_' + name.replace('/', '_'), osp.join(ROOT, 'tools', f'{name}.py'))
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


# The released m0 checkpoint uses q kernels 5, 5, 5, 5 (the official
# classification code); the official downstream file lists 7, 5, 3, 3.
_RELEASED_KERNELS = {'m0': [5, 5, 5, 5]}


def official_backbone(arch, window_size=(7, 7, 7), seed=None, **kwargs):
    """The official downstream backbone (tests/official transcription) for
    ``arch``, with weights randomised when ``seed`` is given."""
    from tests.official import efficientvit as official
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


def run_test_tool(config, checkpoint, options, work_dir, *extra):
    """tools/test.py in this process (its runner and checks); returns the
    metrics."""
    argv = [config, checkpoint, '--work-dir', str(work_dir), *extra,
            '--cfg-options', *[f'{k}={v}' for k, v in options.items()]]
    old, sys.argv = sys.argv, ['test.py', *argv]
    try:
        args = load_tool('test').parse_args()
    finally:
        sys.argv = old
    return load_tool('test').run(args)


def make_toy_ade20k(root):
    """A small ADE20K-format set (1 train, 3 val images) in ``root``."""
    from mmevit.tools.toy_shapes import make_ade20k_toy
    return make_ade20k_toy(str(root), num_train=1, num_val=3, min_size=64,
                           max_size=128, show_progress=False)


def det_options(data):
    """--cfg-options testing a toy detector config on ``data``
    (make_coco_toy)."""
    root = data['data_root'] + '/'
    options = {'test_evaluator.ann_file': data['val_ann_file'],
               'test_dataloader.dataset.data_root': root,
               'test_dataloader.batch_size': 2,
               'test_dataloader.num_workers': 0,
               'test_dataloader.persistent_workers': False}
    return options


def seg_options(data):
    """--cfg-options testing a toy segmentor config on ``data``."""
    return {'test_dataloader.dataset.data_root': data['data_root'],
            'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False}


class Payload:
    """Pickles as a call of ``func(*args)``: what a hostile checkpoint holds
    (``Payload(os.system, 'touch x')``)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def copy_sources(dest):
    """A copy of the repository as a fresh clone has it: no environments,
    data, build outputs or generated metadata."""
    def skip(folder, names):
        at_root = {'.git', 'data', 'work_dirs', 'build', 'dist', 'mutants'}
        return [n for n in names if n in ('.mim', '__pycache__')
                or n.endswith(('.egg-info', '_cache'))
                or (folder == ROOT and (n in at_root
                                        or n.startswith('.venv')))]

    shutil.copytree(ROOT, dest, ignore=skip)
    return dest


def parse_tools(batch):
    """Run ``[[script, args], ...]`` as files up to their argument parsing,
    in one process (tests/parse_only.py); one result dict per command."""
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tests', 'parse_only.py')],
        input=json.dumps(batch), capture_output=True, text=True, cwd=ROOT,
        timeout=300, check=True).stdout
    return json.loads(out.splitlines()[-1])
