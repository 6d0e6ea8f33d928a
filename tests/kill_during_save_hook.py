"""A hook that SIGKILLs the training process while it writes a checkpoint.

Imported by the training subprocess of tests/test_safety.py (through the
config's ``custom_imports``) to show that a run killed during a save keeps
its last complete checkpoint.
"""
import os
import signal
import threading
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """Kill the process as soon as the ``save_index``-th checkpoint save
    creates its first file in the work dir (before the file is complete or
    just after)."""

    priority = 'VERY_LOW'

    def __init__(self, save_index):
        self.save_index = save_index
        self.saves = 0

    def before_save_checkpoint(self, runner, checkpoint):
        self.saves += 1
        if self.saves != self.save_index:
            return
        work_dir = runner.work_dir
        before = set(os.listdir(work_dir))

        def kill_when_a_file_appears():
            while not set(os.listdir(work_dir)) - before:
                time.sleep(0.0002)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=kill_when_a_file_appears, daemon=True).start()
