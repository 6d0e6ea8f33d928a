"""Distributed runs of the tools on CPU-only torch."""
import gc
import os

import torch
import torch.distributed as dist
from mmengine.logging import print_log

from .config_options import replace_sync_bn


def prepare_cpu_distributed(cfg):
    """Start a gloo process group for a CPU-only ``--launcher pytorch`` run.

    mmengine's launcher calls ``torch.cuda.set_device``, which fails on a
    CPU-only torch; the Runner skips its own initialisation when a group
    exists. DDP must also get no ``device_ids`` for CPU modules, and torch
    has no SyncBN for them: mmseg's SyncBN becomes BN (statistics per
    process).
    """
    if torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        # device_ids=None: mmengine would otherwise pass [LOCAL_RANK]. Keep
        # the config's find_unused_parameters, which mmengine reads only when
        # it builds the wrapper itself.
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    sync_bn = ', SyncBN replaced by BN' if replace_sync_bn(cfg.model) else ''
    print_log(f'CPU distributed run: rank {dist.get_rank()} of '
              f'{dist.get_world_size()} (gloo), LOCAL_RANK='
              f'{os.environ.get("LOCAL_RANK")}{sync_bn}', logger='current')


def end_distributed():
    """End a distributed run once every rank has finished: free what still
    holds the process group, then destroy it.

    Call it after the runner is out of scope. The runner and its loops refer
    to each other, so its DDP wrapper, whose reducer holds the gloo group,
    lives until a cyclic garbage collection; left to the interpreter's exit,
    that frees the group's C++ worker threads while Python is torn down,
    which now and then aborts the process ("terminate called without an
    active exception"). The barrier keeps any rank from tearing down its
    connections while another still uses them.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        gc.collect()
        dist.destroy_process_group()
