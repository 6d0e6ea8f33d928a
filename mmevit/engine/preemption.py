"""Preemption: a signal makes training save a checkpoint and stop.

Schedulers preempt a job with SIGTERM (Slurm, Kubernetes) and kill it a
grace period later; Slurm's ``--signal=USR1@90`` sends a chosen signal ahead
of the time limit. :class:`PreemptionHook` turns such a signal into a clean
stop: the current iteration ends, every process stops after the same
iteration, a complete checkpoint is saved atomically and recorded in
``last_checkpoint``, and :class:`TrainingPreempted` ends the run (the tools
exit with :data:`PREEMPTED_EXIT_STATUS`).
"""
import os.path as osp
import signal

import torch
from mmengine.dist import all_reduce, barrier, get_world_size
from mmengine.hooks import Hook

from ..registry import HOOKS
from .checkpoint_hook import save_checkpoint_atomically

#: Exit status of a preempted run that saved its checkpoint: ``EX_TEMPFAIL``
#: of sysexits.h (a temporary failure; running again continues the work).
PREEMPTED_EXIT_STATUS = 75


class TrainingPreempted(Exception):
    """Training stopped on a preemption signal after saving ``checkpoint``.

    Args:
        signal_name (str): The signal, e.g. ``'SIGTERM'``.
        checkpoint (str): The checkpoint saved.
        iteration (int): Iterations trained.
    """

    def __init__(self, signal_name, checkpoint, iteration):
        super().__init__(
            f'preempted by {signal_name}: stopped after iteration '
            f'{iteration} and saved {checkpoint}; --resume continues from it')
        self.signal_name = signal_name
        self.checkpoint = checkpoint
        self.iteration = iteration


def signal_number(name):
    """The number of signal ``name`` (``'SIGUSR1'``, ``'USR1'`` or
    ``'10'``).

    Raises:
        ValueError: No such signal; names the valid forms.
    """
    text = str(name).upper()
    if text.isdigit():
        return signal.Signals(int(text)).value
    try:
        return signal.Signals[text if text.startswith('SIG') else 'SIG' +
                              text].value
    except KeyError:
        raise ValueError(f'unknown signal {name!r}; name one such as SIGTERM,'
                         ' USR1 or 10') from None


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Save a checkpoint and stop training when the process receives one of
    ``signals``.

    The handlers only note the signal. After each training iteration the
    processes of a distributed run agree (an all-reduce of one flag) on
    whether any of them got one, so all stop after the same iteration even
    when the signal reached only some. The checkpoint, ``iter_N.pth`` in the
    work dir (N iterations trained), is saved as :class:`SafeCheckpointHook`
    saves (temporary name, rename, ``last_checkpoint``); then
    :class:`TrainingPreempted` is raised on every process. A signal that
    comes during the save only adds to the note.

    Args:
        signals (Sequence[str | int]): The signals, by name or number.
            Defaults to ``('SIGTERM', )``.
    """

    priority = 'LOWEST'  # after the iteration's logging and checkpoints

    def __init__(self, signals=('SIGTERM', )):
        self.signals = sorted({signal_number(s) for s in signals})
        self.received = 0
        self._previous = {}

    def _note(self, signum, frame):
        self.received = max(self.received, signum)

    def before_train(self, runner):
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._note)

    def after_train(self, runner):
        self._restore_handlers()

    def _restore_handlers(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        received = self.received
        if get_world_size() > 1:
            flag = torch.tensor([received])
            all_reduce(flag, op='max')
            received = int(flag.item())
        if not received:
            return
        iteration = runner.iter + 1
        filename = f'iter_{iteration}.pth'
        save_checkpoint_atomically(runner, runner.work_dir, filename,
                                   by_epoch=False)
        barrier()  # the file is complete before any process exits
        self._restore_handlers()
        raise TrainingPreempted(signal.Signals(received).name,
                                osp.join(runner.work_dir, filename),
                                iteration)
