"""A killed run never blocks the next one: the work-dir lock belongs to the
training process alone, and ``--resume`` right after a SIGKILL (with
persistent data-loader workers still winding down) trains on. Also the
one-line errors of a checkpoint that cannot be resumed from and of a
``last_checkpoint`` that finds no room."""
import os
import signal
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from mmevit.checkpoint import load_checkpoint_file
from mmevit.tools import exclusive_work_dir, replace_sync_bn
from tests.fault_runs import finish, start_training, train, train_env, write_config
from tests.helpers import ROOT, run_tool_in_process

register_all_modules(init_default_scope=True)

# A process that takes the lock, then forks a child (as a DataLoader
# starts its workers) that outlives it.
HOLDER = '''
import os, sys, time
from mmevit.tools import exclusive_work_dir, replace_sync_bn
with exclusive_work_dir(sys.argv[1]):
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    print('locked', flush=True)
    time.sleep(600)
'''


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_lock_of_a_killed_process_is_free_while_its_children_live(tmp_path):
    """The children a training process forks (data-loader workers) do not
    hold its lock: SIGKILL the holder and the lock is free at once, though
    its child still runs."""
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(tmp_path)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == 'locked\n'
    [child] = map(int, open(f'/proc/{holder.pid}/task/{holder.pid}/children')
                  .read().split())
    holder.kill()
    holder.wait()
    try:
        assert alive(child)
        with exclusive_work_dir(str(tmp_path)):
            pass
        assert alive(child)  # the lock was free with the child alive
    finally:
        os.kill(child, signal.SIGKILL)


@pytest.mark.slow_fault
@pytest.mark.parametrize('fault', ['train:4', 'save:2', 'val:1', 'worker:5'])
def test_run_killed_with_workers_resumes_at_once(toy_coco, tmp_path, fault):
    """Two persistent workers per loader, SIGKILL inside a training step,
    during the second save, during validation, or sent by a worker; then
    ``--resume`` without waiting trains to the end."""
    config = write_config(tmp_path / 'toy.py', toy_coco, workers=2,
                          val_interval=1)
    work_dir = tmp_path / 'work'
    env = train_env(FAULT=fault)
    if fault.startswith('save'):
        env['FAULT'] = ''
        config_text = open(config).read().replace(
            "custom_hooks = [dict(type='FaultHook')]",
            "custom_hooks = [dict(type='FaultHook'), "
            "dict(type='KillDuringSaveHook', save_index=2)]").replace(
            "'tests.fault_hooks'", "'tests.fault_hooks', "
            "'tests.kill_during_save_hook'")
        open(config, 'w').write(config_text)
    [(status, output)] = finish([start_training(config, work_dir, env=env)])
    with exclusive_work_dir(str(work_dir)):  # what --resume does first
        pass
    assert status == -signal.SIGKILL, output[-3000:]
    if fault.startswith('save'):
        open(config, 'w').write(config_text.replace(
            "dict(type='KillDuringSaveHook', save_index=2)", ''))
    status, output = train(config, work_dir, '--resume')
    assert status == 0, output[-3000:]
    assert 'is in use by another training run' not in output
    final = load_checkpoint_file(work_dir / 'epoch_2.pth')
    assert final['meta']['iter'] == 6


def test_resume_from_weights_without_meta_names_the_file(
        toy_coco, tmp_path, monkeypatch, capsys):
    """A checkpoint of the right model without ``meta`` given to
    ``--resume``: one error line naming the file and the option that
    starts from its weights, no training."""
    config = write_config(tmp_path / 'toy.py', toy_coco, epochs=1)
    cfg = Config.fromfile(config)
    replace_sync_bn(cfg.model)
    weights = tmp_path / 'weights_only.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, weights)
    monkeypatch.syspath_prepend(ROOT)
    status = run_tool_in_process(monkeypatch, 'train', config, '--work-dir',
                                 tmp_path / 'resumed', '--resume', weights)
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    assert err == (f'error: cannot resume from {weights}: it has no meta (the '
                   'epoch and iteration a training run saves), so it holds '
                   'weights only; start a new run from its weights with '
                   f'--cfg-options load_from={weights} instead of --resume\n')
    assert not list((tmp_path / 'resumed').glob('*.pth'))


@pytest.fixture
def few_inodes_disk(tmp_path):
    """A 256 MiB tmpfs with room for 64 files (needs root)."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o',
                              'size=256m,nr_inodes=64', 'tmpfs', str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip('a tmpfs cannot be mounted here (needs root): '
                    f'{mounted.stderr.decode().strip()}')
    yield disk
    subprocess.run(['umount', '--lazy', str(disk)], check=True)


def test_last_checkpoint_on_a_full_disk_names_the_file(
        toy_coco, tmp_path, few_inodes_disk, monkeypatch, capsys):
    """The disk fills up (no file can be created: out of inodes) after the
    checkpoint is written and before ``last_checkpoint`` is: one error line
    naming both files; the checkpoint is complete."""
    config = write_config(tmp_path / 'toy.py', toy_coco, epochs=1)
    text = open(config).read().replace(
        "custom_hooks = [dict(type='FaultHook')]",
        "custom_hooks = [dict(type='FillDiskAfterSaveHook')]")
    open(config, 'w').write(text)
    work_dir = few_inodes_disk / 'work'
    monkeypatch.syspath_prepend(ROOT)
    status = run_tool_in_process(monkeypatch, 'train', config,
                                 '--work-dir', work_dir)
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    checkpoint = work_dir / 'epoch_1.pth'
    assert err == (f'error: no room to write {work_dir}/last_checkpoint (No '
                   f'space left on device): the checkpoint {checkpoint} is '
                   'complete but not recorded there; free some space and '
                   f'resume with --resume {checkpoint}\n')
    assert load_checkpoint_file(checkpoint)['meta']['epoch'] == 1
    assert not (work_dir / 'last_checkpoint.tmp').exists()
