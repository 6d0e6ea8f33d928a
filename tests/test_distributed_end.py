"""The end of a distributed run (``end_distributed``), in a one-process
gloo group of its own (a subprocess: the group is process-wide)."""
import subprocess
import sys

from tests.helpers import free_port

# A DDP wrapper caught in a reference cycle, as the Runner and its loops
# hold the model; the script prints whether the wrapper (whose reducer holds
# the gloo group) is still alive after end_distributed.
SCRIPT = '''
import gc, os, weakref
import torch.distributed as dist
from torch import nn
from mmevit.tools import end_distributed

os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT='{port}')
dist.init_process_group('gloo', rank=0, world_size=1)
gc.disable()  # no collection by chance before end_distributed
class Runner:
    pass
runner = Runner()
runner.model = nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
runner.loop = Runner()
runner.loop.runner = runner
wrapper = weakref.ref(runner.model)
del runner
end_distributed()
print('alive' if wrapper() is not None else 'freed', dist.is_initialized())
'''


def test_end_distributed_frees_the_group_holders_before_exit():
    """A wrapper kept only by reference cycles is freed, and the group
    destroyed, while the interpreter is alive: left to the exit, freeing
    the gloo group's threads during finalization may abort the process."""
    result = subprocess.run(
        [sys.executable, '-c', SCRIPT.format(port=free_port())],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['freed', 'False'], result.stdout
