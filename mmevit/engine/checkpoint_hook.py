"""A CheckpointHook whose checkpoints survive a crash during saving."""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS


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
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = self._record_step(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp_name = f'.{filename}.tmp'
        runner.save_checkpoint(
            self.out_dir, tmp_name, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        replace_atomically(osp.join(self.out_dir, tmp_name), self.last_ckpt)
        write_text_atomically(osp.join(runner.work_dir, 'last_checkpoint'),
                              self.last_ckpt)
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


def use_safe_checkpoint_hook(cfg):
    """Make a config's mmengine ``CheckpointHook`` a :class:`SafeCheckpointHook`
    (in place). Returns True if it was replaced."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if hook is not None and hook.get('type') in ('CheckpointHook',
                                                 CheckpointHook):
        hook['type'] = 'SafeCheckpointHook'
        return True
    return False
