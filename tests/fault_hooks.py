"""Faults for the training subprocesses of tests/test_cluster_faults.py,
imported through the config's ``custom_imports`` and switched on by
environment variables (a resumed run, started without them, runs clean).

``FAULT=train:N``: SIGKILL inside the training step of iteration N (in the
backbone's forward). ``FAULT=val:N``: SIGKILL after validation batch N.
``FAULT=worker:N``: a data-loader worker SIGKILLs the training process
after loading its N-th sample. ``PAUSE_AT=N`` with ``PAUSE_DIR``: every
process writes ``PAUSE_DIR/paused.RANK`` after iteration N and waits until
``PAUSE_DIR/go`` exists (a test sends its signals in between).
:class:`FillDiskAfterSaveHook` fills a disk that is short of inodes.
"""
import errno
import os
import os.path as osp
import signal
import time

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.utils.data import get_worker_info


def kill_training_process(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


class KillParentFromWorker:
    """A pipeline step: in a data-loader worker, SIGKILL the training
    process (the worker's parent) once this worker has loaded ``samples``
    samples."""

    def __init__(self, samples):
        self.samples = samples
        self.loaded = 0

    def __call__(self, results):
        if get_worker_info() is not None:
            self.loaded += 1
            if self.loaded == self.samples:
                os.kill(os.getppid(), signal.SIGKILL)
        return results


@HOOKS.register_module()
class FaultHook(Hook):
    """The faults of ``FAULT`` and ``PAUSE_AT`` (module docstring)."""

    priority = 'NORMAL'  # before PreemptionHook's after_train_iter

    def __init__(self):
        point, _, at = os.environ.get('FAULT', ':').partition(':')
        self.point, self.at = point, int(at or 0)
        self.pause_at = int(os.environ.get('PAUSE_AT', 0))

    def before_train(self, runner):
        if self.point == 'worker':  # before the workers start
            pipeline = runner.train_dataloader.dataset.pipeline
            pipeline.transforms.insert(0, KillParentFromWorker(self.at))

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.point == 'train' and runner.iter + 1 == self.at:
            model = getattr(runner.model, 'module', runner.model)
            model.backbone.register_forward_pre_hook(kill_training_process)

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None):
        if self.point == 'val' and batch_idx + 1 == self.at:
            kill_training_process()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 != self.pause_at:
            return
        folder = os.environ['PAUSE_DIR']
        with open(osp.join(folder, f'paused.{get_rank()}'), 'w') as f:
            f.write(str(os.getpid()))
        while not osp.exists(osp.join(folder, 'go')):
            time.sleep(0.01)


@HOOKS.register_module()
class FillDiskAfterSaveHook(Hook):
    """Before a checkpoint is written, create files in the work dir until
    the disk can hold no more and remove one: the checkpoint (one new file)
    fits, the next new file (``last_checkpoint``'s) does not."""

    def before_save_checkpoint(self, runner, checkpoint):
        folder = osp.join(runner.work_dir, 'filler')
        os.makedirs(folder)
        count = 0
        while True:
            try:
                open(osp.join(folder, str(count)), 'w').close()
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                break
            count += 1
        os.remove(osp.join(folder, str(count - 1)))
