"""Config adjustments that let mmdet/mmseg configs run on CPU-only torch."""
import gc
import os

import torch
import torch.distributed as dist
from mmengine.logging import print_log

from ..errors import ConfigError

TASKS = ('mmdet', 'mmseg')


def task_of(cfg):
    """``'mmdet'`` or ``'mmseg'``, from the config's ``default_scope``.

    Raises:
        ConfigError: The config belongs to neither codebase.
    """
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ConfigError(f'config default_scope={scope!r}; mmevit tools run '
                         f'configs of {TASKS} (inherit an mmdet:: or mmseg:: '
                         'base config)')
    return scope


def replace_sync_bn(cfg_node):
    """Turn every ``SyncBN`` norm config into ``BN`` (in place).

    SyncBN needs a process group on CUDA; single-process and CPU runs use
    plain BN, which is what SyncBN computes with one process anyway.

    Returns:
        int: Number of replaced entries.
    """
    count = 0
    if isinstance(cfg_node, dict):
        if cfg_node.get('type') == 'SyncBN':
            cfg_node['type'] = 'BN'
            count += 1
        for value in cfg_node.values():
            count += replace_sync_bn(value)
    elif isinstance(cfg_node, (list, tuple)):
        for value in cfg_node:
            count += replace_sync_bn(value)
    return count


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
