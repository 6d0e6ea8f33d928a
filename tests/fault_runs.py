"""Real training runs of the toy RetinaNet that the fault tests kill,
preempt and resume: their configs, launches and results."""
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import torch

from mmevit.checkpoint import load_checkpoint_file
from tests.helpers import RETINA_TOY, ROOT, free_port

#: Seconds a test waits for a run or a marker file.
TIMEOUT = 300


def write_config(path, data, *, images=6, epochs=2, workers=0,
                 val_interval=10, checkpoint=None):
    """A config file at ``path``: the toy RetinaNet on ``images`` training
    images of ``data`` (make_coco_toy) at 128x96, batch 2, seeded and
    deterministic, ``workers`` persistent data-loader workers per process,
    with tests/fault_hooks.py's FaultHook. ``checkpoint`` updates
    default_hooks.checkpoint (every epoch by default)."""
    root = data['data_root'] + '/'
    loader = dict(batch_size=2, num_workers=workers,
                  persistent_workers=workers > 0)
    checkpoint = dict(dict(interval=1, max_keep_ckpts=3), **(checkpoint or {}))
    path.write_text(f'''
_base_ = {RETINA_TOY!r}
custom_imports = dict(imports=['mmevit', 'tests.fault_hooks'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='FaultHook')]
randomness = dict(seed=0, deterministic=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))]
train_dataloader = dict(**{loader!r}, dataset=dict(
    data_root={root!r}, indices={images}, pipeline=train_pipeline))
val_dataloader = dict(**{loader!r}, dataset=dict(
    data_root={root!r}, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={data['val_ann_file']!r})
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={epochs}, val_interval={val_interval})
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                        begin=0, end=4)]
default_hooks = dict(logger=dict(interval=1), checkpoint={checkpoint!r})
''')
    return str(path)


def train_env(**extra):
    """The environment of a training subprocess: one thread, tests/
    importable, plus ``extra``."""
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(
        [ROOT, os.environ.get('PYTHONPATH', '')]), **extra)


def start(argv, log_dir, env=None):
    """Start ``argv`` from the repository root; returns the process. Its
    stdout and stderr go to a file in ``log_dir`` (a pipe would stay open
    while the data-loader workers of a killed run live on), named by
    ``process.output_path``."""
    fd, output_path = tempfile.mkstemp(suffix='.log', dir=log_dir)
    with os.fdopen(fd, 'w') as output:
        process = subprocess.Popen(argv, cwd=ROOT, env=env or train_env(),
                                   stdout=output, stderr=subprocess.STDOUT)
    process.output_path = output_path
    return process


def start_training(config, work_dir, *extra, env=None):
    """Start ``python tools/train.py CONFIG --work-dir WORK_DIR EXTRA`` as
    a user does (see :func:`start`)."""
    return start([sys.executable, 'tools/train.py', config, '--work-dir',
                  str(work_dir), *map(str, extra)],
                 osp.dirname(osp.abspath(work_dir)), env)


def output_of(process):
    with open(process.output_path) as f:
        return f.read()


def train(config, work_dir, *extra, env=None):
    """Run tools/train.py to its end; returns (exit status, output)."""
    [result] = finish([start_training(config, work_dir, *extra, env=env)])
    return result


def start_ranks(config, work_dir, *extra, world_size=2, env=None):
    """Start ``world_size`` processes of ``tools/train.py --launcher
    pytorch`` on 127.0.0.1 (gloo), with the variables torchrun gives each
    rank; returns them by rank."""
    port = str(free_port())
    processes = []
    for rank in range(world_size):
        rank_env = dict(env or train_env(), MASTER_ADDR='127.0.0.1',
                        MASTER_PORT=port, WORLD_SIZE=str(world_size),
                        RANK=str(rank), LOCAL_RANK=str(rank),
                        LOCAL_WORLD_SIZE=str(world_size))
        processes.append(start_training(config, work_dir, '--launcher',
                                        'pytorch', *extra, env=rank_env))
    return processes


def finish(processes):
    """Wait for ``processes`` (not for the children they leave); returns
    their (exit status, output)s."""
    return [(p.wait(timeout=TIMEOUT), output_of(p)) for p in processes]


def wait_for(paths, process=None):
    """Wait until every file of ``paths`` exists; fail early when
    ``process`` ends first."""
    deadline = time.monotonic() + TIMEOUT
    while not all(osp.exists(p) for p in paths):
        if process is not None and process.poll() is not None:
            raise AssertionError(f'the run ended ({process.returncode}) '
                                 f'before {paths}:\n{output_of(process)}')
        assert time.monotonic() < deadline, f'no {paths}'
        time.sleep(0.01)


def assert_same_weights(path, reference):
    """The model weights and optimizer state of checkpoint ``path`` are
    bit-identical to those of ``reference``."""
    ours, theirs = load_checkpoint_file(path), load_checkpoint_file(reference)
    assert ours['meta']['iter'] == theirs['meta']['iter']
    assert ours['state_dict'].keys() == theirs['state_dict'].keys()
    differ = {key: (value - theirs['state_dict'][key]).abs().max().item()
              for key, value in ours['state_dict'].items()
              if not torch.equal(value, theirs['state_dict'][key])}
    assert not differ, f'{len(differ)} tensors differ, e.g. ' \
        f'{sorted(differ.items(), key=lambda kv: -kv[1])[:3]}'
    for index, state in ours['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(value, theirs['optimizer']['state'][index][
                name]), (index, name)
