"""One training run per work dir.

Two runs on one ``--work-dir`` would overwrite each other's checkpoints and
``last_checkpoint`` (and, started in the same second, share a log folder).
"""
import contextlib
import errno
import fcntl
import os
import os.path as osp

from ..errors import ConfigError

LOCK_NAME = '.train.lock'


@contextlib.contextmanager
def exclusive_work_dir(work_dir):
    """Hold an exclusive lock on ``work_dir`` for the ``with`` block.

    The lock is a POSIX record lock (``fcntl.lockf``) on
    ``work_dir/.train.lock``. It belongs to the calling process alone:
    forked children (data-loader workers) do not inherit it, and the system
    releases it when that process ends in any way, SIGKILL included, so a
    killed run never blocks the next one, even while its workers are still
    winding down. (An ``flock`` would be shared with every forked worker and
    outlive a killed parent.) Only the main process (``RANK`` 0) of a
    distributed run takes it. The process must not open and close the lock
    file elsewhere while it holds the lock: closing any descriptor of the
    file releases a POSIX lock.

    Raises:
        ConfigError: Another process holds the lock; names the work dir and
            that process.
    """
    if int(os.environ.get('RANK', 0)) != 0:
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    with open(path, 'a+') as lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            lock.seek(0)
            holder = lock.read().strip() or 'unknown'
            raise ConfigError(
                f'work dir {work_dir} is in use by another training run '
                f'(process {holder} holds {path}); wait for it to end or '
                'pass another --work-dir') from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield
