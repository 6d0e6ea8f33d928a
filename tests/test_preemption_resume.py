"""Preemption and resume on real runs of tools/train.py: a signal saves a
checkpoint after the current iteration on every rank, and a resumed run
(after SIGKILL or preemption, mid-epoch, with or without persistent
workers, on 1 or 2 gloo ranks) ends with the weights of the uninterrupted
run, bit for bit. Also the two-"node" launch and the Slurm requeue logic."""
import os
import signal
import subprocess
import sys

import pytest

from mmevit.checkpoint import load_checkpoint_file
from mmevit.engine import PREEMPTED_EXIT_STATUS
from tests.fault_runs import (
    assert_same_weights,
    finish,
    start,
    start_ranks,
    start_training,
    train,
    train_env,
    wait_for,
    write_config,
)
from tests.helpers import ROOT, free_port

#: Checkpoints every 2 iterations: a run killed at iteration 5 resumes from
#: iter_4.pth, in the middle of epoch 2 (3 iterations an epoch).
EVERY_2_ITERS = dict(by_epoch=False, interval=2)


@pytest.fixture(scope='module')
def one_rank_reference(toy_coco, tmp_path_factory):
    """The uninterrupted 1-process run (no workers): its config and final
    checkpoint."""
    folder = tmp_path_factory.mktemp('reference')
    config = write_config(folder / 'toy.py', toy_coco,
                          checkpoint=EVERY_2_ITERS)
    status, output = train(config, folder / 'work')
    assert status == 0, output[-3000:]
    return config, folder / 'work' / 'iter_6.pth'


def test_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(
        one_rank_reference, tmp_path):
    """SIGKILL inside iteration 5; --resume continues from iter_4.pth (mid
    epoch) and ends bit-identical to the uninterrupted run."""
    config, reference = one_rank_reference
    work_dir = tmp_path / 'work'
    status, output = train(config, work_dir, env=train_env(FAULT='train:5'))
    assert status == -signal.SIGKILL, output[-3000:]
    assert (work_dir / 'last_checkpoint').read_text().endswith('iter_4.pth')
    status, output = train(config, work_dir, '--resume')
    assert status == 0, output[-3000:]
    assert 'resumed epoch: 1, iter: 4' in output
    assert_same_weights(work_dir / 'iter_6.pth', reference)


def preempt(processes, pause_dir, signalled, signum):
    """Send ``signum`` to the ``signalled`` processes once all are paused
    after the same iteration (tests/fault_hooks.py), then let them go."""
    wait_for([pause_dir / f'paused.{rank}' for rank in range(len(processes))],
             processes[0])
    for process in signalled:
        os.kill(process.pid, signum)
    (pause_dir / 'go').touch()


def test_sigterm_with_workers_saves_and_resumes_to_the_same_weights(
        toy_coco, one_rank_reference, tmp_path):
    """Two persistent workers, SIGTERM during iteration 5: exit status 75
    and one line, iter_5.pth complete and in last_checkpoint; --resume ends
    with the weights of the uninterrupted run without workers."""
    config = write_config(tmp_path / 'toy.py', toy_coco, workers=2,
                          checkpoint=EVERY_2_ITERS)
    work_dir, pause_dir = tmp_path / 'work', tmp_path / 'pause'
    pause_dir.mkdir()
    run = start_training(config, work_dir, env=train_env(
        PAUSE_AT='5', PAUSE_DIR=str(pause_dir)))
    preempt([run], pause_dir, [run], signal.SIGTERM)
    [(status, output)] = finish([run])
    saved = work_dir / 'iter_5.pth'
    assert status == PREEMPTED_EXIT_STATUS, output[-3000:]
    assert output.rstrip().splitlines()[-1] == (
        f'preempted by SIGTERM: stopped after iteration 5 and saved {saved}; '
        '--resume continues from it')
    assert (work_dir / 'last_checkpoint').read_text() == str(saved)
    assert load_checkpoint_file(saved)['meta']['iter'] == 5
    status, output = train(config, work_dir, '--resume')
    assert status == 0, output[-3000:]
    assert_same_weights(work_dir / 'iter_6.pth', one_rank_reference[1])


@pytest.mark.slow_fault
def test_two_ranks_stop_together_and_resume_to_the_same_weights(
        toy_coco, tmp_path):
    """2 gloo ranks, one worker each: SIGUSR1 (--preempt-signal USR1)
    reaches rank 1 only, during iteration 3 of 4; both ranks stop after
    it, with status 75, and the resumed 2-rank run ends bit-identical to
    the uninterrupted one."""
    config = write_config(tmp_path / 'toy.py', toy_coco, images=8,
                          workers=1)
    results = finish(start_ranks(config, tmp_path / 'reference'))
    assert [status for status, _ in results] == [0, 0], results[0][1][-3000:]

    work_dir, pause_dir = tmp_path / 'work', tmp_path / 'pause'
    pause_dir.mkdir()
    ranks = start_ranks(config, work_dir, '--preempt-signal', 'USR1',
                        env=train_env(PAUSE_AT='3', PAUSE_DIR=str(pause_dir)))
    preempt(ranks, pause_dir, ranks[1:], signal.SIGUSR1)
    results = finish(ranks)
    assert [status for status, _ in results] == [PREEMPTED_EXIT_STATUS] * 2, \
        results[0][1][-3000:] + results[1][1][-3000:]
    for _, output in results:
        assert 'preempted by SIGUSR1: stopped after iteration 3' in output
    assert (work_dir / 'last_checkpoint').read_text() == str(
        work_dir / 'iter_3.pth')

    results = finish(start_ranks(config, work_dir, '--resume'))
    assert [status for status, _ in results] == [0, 0], results[0][1][-3000:]
    assert_same_weights(work_dir / 'epoch_2.pth',
                        tmp_path / 'reference' / 'epoch_2.pth')


def test_two_nodes_on_one_machine_train_and_save(toy_coco, tmp_path):
    """tools/dist_train.sh started twice, NNODES=2 and NODE_RANK 0 and 1 on
    127.0.0.1, one process each (gloo): one run, one checkpoint."""
    config = write_config(tmp_path / 'toy.py', toy_coco, images=4, epochs=1)
    env = train_env(NNODES='2', MASTER_ADDR='127.0.0.1', PORT=str(free_port()),
                    PYTHON=sys.executable)
    nodes = [start(['bash', 'tools/dist_train.sh', config, '1', '--work-dir',
                    str(tmp_path / 'work')], tmp_path,
                   dict(env, NODE_RANK=str(rank))) for rank in range(2)]
    results = finish(nodes)
    assert [status for status, _ in results] == [0, 0], \
        results[0][1][-3000:] + results[1][1][-3000:]
    assert 'rank 0 of 2 (gloo)' in results[0][1]
    checkpoint = load_checkpoint_file(tmp_path / 'work' / 'epoch_1.pth')
    assert checkpoint['meta']['iter'] == 1  # 4 images, 2 ranks, batch 2
    assert sorted(p.name for p in (tmp_path / 'work').glob('*.pth')) == [
        'epoch_1.pth']


def fake_slurm(folder, srun_status):
    """``srun`` and ``scontrol`` stand-ins in ``folder`` that record their
    arguments (``srun`` exits with ``srun_status``)."""
    for name, status in (('srun', srun_status), ('scontrol', 0)):
        path = folder / name
        path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{folder}/{name}.log"'
                        f'\nexit {status}\n')
        path.chmod(0o755)
    return dict(os.environ, PATH=f'{folder}{os.pathsep}{os.environ["PATH"]}')


@pytest.mark.parametrize('srun_status, requeued', [
    (PREEMPTED_EXIT_STATUS, True), (0, False), (1, False)])
def test_slurm_requeue_after_a_preempted_run(tmp_path, srun_status, requeued):
    """REQUEUE=1: train.py starts with --resume (before the user's options)
    and --preempt-signal; a run that ends with status 75 requeues the batch
    job, any other status does not; the script exits with srun's status."""
    env = dict(fake_slurm(tmp_path, srun_status), REQUEUE='1',
               SLURM_JOB_ID='4242', PREEMPT_SIGNAL='USR1')
    result = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'gpu', 'job', 'CONFIG.py', 'w',
         '--amp'], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60)
    assert result.returncode == srun_status, result.stderr
    srun = (tmp_path / 'srun.log').read_text().splitlines()
    assert srun[-5:] == ['--launcher=slurm', '--preempt-signal', 'USR1',
                         '--resume', '--amp']
    scontrol = tmp_path / 'scontrol.log'
    assert scontrol.exists() == requeued
    if requeued:
        assert scontrol.read_text().split() == ['requeue', '4242']


def test_slurm_requeue_needs_a_batch_job(tmp_path):
    env = dict(fake_slurm(tmp_path, 0), REQUEUE='1')
    env.pop('SLURM_JOB_ID', None)
    result = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'gpu', 'job', 'CONFIG.py', 'w'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith('error: REQUEUE=1 requeues the batch job')
    assert not (tmp_path / 'srun.log').exists()
