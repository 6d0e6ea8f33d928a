"""A CheckpointHook whose checkpoints survive a crash during saving."""
import errno
import glob
import os
import os.path as osp
import shutil

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook

from ..errors import CheckpointError
from ..registry import HOOKS

#: errno values of a write that found no room: disk full, quota, file size
#: limit.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(tmp_path, path):
    """Move a complete ``tmp_path`` onto ``path`` (same folder) so that a
    crash leaves either the old or the new file, never a partial one."""
    _fsync(tmp_path)
    os.replace(tmp_path, path)
    _fsync(osp.dirname(osp.abspath(path)))


def write_text_atomically(path, text):
    tmp_path = f'{path}.tmp'
    with open(tmp_path, 'w') as f:
        f.write(text)
    replace_atomically(tmp_path, path)


def record_last_checkpoint(work_dir, checkpoint):
    """Name the complete ``checkpoint`` in ``work_dir/last_checkpoint``
    (atomically), as ``--resume`` without a path reads it.

    Raises:
        CheckpointError: The disk has no room for the file; names it and
            the checkpoint, which is complete.
    """
    path = osp.join(work_dir, 'last_checkpoint')
    try:
        write_text_atomically(path, checkpoint)
    except OSError as err:
        if err.errno not in NO_ROOM:
            raise
        if osp.isfile(f'{path}.tmp'):
            os.remove(f'{path}.tmp')
        raise CheckpointError(
            f'no room to write {path} ({os.strerror(err.errno)}): the '
            f'checkpoint {checkpoint} is complete but not recorded there; '
            f'free some space and resume with --resume {checkpoint}') from err


def last_complete_checkpoint(work_dir):
    """The checkpoint named by ``work_dir/last_checkpoint``, or None."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip() or None


def no_room_error(err):
    """The OSError of a full disk (or quota or file size limit) that caused
    ``err``, or None."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in NO_ROOM:
            return err
        err = err.__cause__ or err.__context__
    return None


def _mib(num_bytes):
    return f'{num_bytes / 2**20:.1f} MiB'


def no_room_message(path, tmp_path, previous, err):
    """One line for a checkpoint that did not fit: the file, what it needs
    (the size of the previous checkpoint, or at least what was written) and
    what is free, once the partial ``tmp_path`` is removed."""
    written = osp.getsize(tmp_path) if osp.isfile(tmp_path) else 0
    if osp.isfile(tmp_path):
        os.remove(tmp_path)
    free = shutil.disk_usage(osp.dirname(osp.abspath(path))).free
    if previous and osp.isfile(previous):
        needed = f'about {_mib(osp.getsize(previous))} (the size of {previous})'
        kept = f'; the last complete checkpoint {previous} is kept'
    else:
        needed, kept = f'more than {_mib(written)}', ''
    return (f'no room to save checkpoint {path} ({os.strerror(err.errno)}): '
            f'it needs {needed}, {_mib(free)} are free there; the partial '
            f'file was removed{kept}')


def save_checkpoint_atomically(runner, out_dir, filename, **kwargs):
    """``runner.save_checkpoint`` to ``out_dir/filename`` under a temporary
    name, renamed into place when complete and then recorded in
    ``last_checkpoint`` (:func:`record_last_checkpoint`). Call it on every
    process; the main process writes.

    Args:
        runner (Runner): The runner.
        out_dir (str): Local folder of the checkpoint.
        filename (str): Its file name.
        **kwargs: More arguments of ``runner.save_checkpoint``.

    Returns:
        bool: Whether this process wrote the checkpoint (the main one).

    Raises:
        CheckpointError: The disk has no room for it (see
            :func:`no_room_message`).
    """
    path = osp.join(out_dir, filename)
    tmp_name = f'.{filename}.tmp'
    try:
        runner.save_checkpoint(out_dir, tmp_name, **kwargs)
    except Exception as err:
        if no_room_error(err) is None:
            raise
        raise CheckpointError(no_room_message(
            path, osp.join(out_dir, tmp_name),
            last_complete_checkpoint(runner.work_dir),
            no_room_error(err))) from err
    if not is_main_process():
        return False
    replace_atomically(osp.join(out_dir, tmp_name), path)
    record_last_checkpoint(runner.work_dir, path)
    return True


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's :class:`CheckpointHook`, crash-safe on local disks.

    mmengine deletes the oldest checkpoint (``max_keep_ckpts``) before
    writing the new one in place and updates ``last_checkpoint`` afterwards:
    a process killed while saving loses every checkpoint. Here a checkpoint
    is written under a temporary name and renamed into place when complete,
    ``last_checkpoint`` is replaced atomically after that, and only then are
    outdated checkpoints removed. Takes the arguments of CheckpointHook.
    Checkpoints written to other storage backends are saved as mmengine does.

    A disk that fills up during a save ends the run with a
    :class:`CheckpointError` naming the file and the space it needs; the
    partial file is removed at once, and partial files left by a killed run
    when the next run starts.
    """

    def before_train(self, runner):
        super().before_train(runner)
        if isinstance(self.file_backend, LocalBackend) and is_main_process():
            pattern = '.' + glob.escape(self.filename_tmpl).replace(
                '{}', '*') + '.tmp'
            for path in glob.glob(osp.join(glob.escape(self.out_dir),
                                           pattern)):
                os.remove(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = self._record_step(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        saved = save_checkpoint_atomically(
            runner, self.out_dir, filename,
            file_client_args=self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args,
            **self.args)
        if not saved:
            return
        for old_step in outdated:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old_step))
            if osp.isfile(path):
                os.remove(path)

    def _record_step(self, runner, step):
        """Add ``step`` to the kept checkpoints; return the steps that fall
        out of ``max_keep_ckpts`` (removed once the new file is in place)."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return []
        outdated = []  # keep_ckpt_ids is a deque of maxlen max_keep_ckpts
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return outdated
