"""What the tools change in a config: ``--cfg-options`` merged with errors
that name the option, launcher and work dir of a train/test run, SyncBN for
single-process runs, the crash-safe checkpoint hook, the preemption hook."""
import os.path as osp

from mmengine.config import Config, ConfigDict
from mmengine.hooks import CheckpointHook

from ..engine import PreemptionHook, task_of
from ..engine.preemption import signal_number
from ..errors import ConfigError


def runner_config(args):
    """The config of a train.py/test.py run (arguments of
    :func:`.cli.add_runner_arguments`): ``args.config`` with
    ``--cfg-options`` merged, the launcher set and the work dir from
    ``--work-dir``, the config, or ``./work_dirs/CONFIG_NAME``.

    Returns:
        tuple[Config, str]: The config and its task.

    Raises:
        ConfigError: The config belongs to neither mmdet nor mmseg.
    """
    cfg = Config.fromfile(args.config)
    task = task_of(cfg)
    cfg.launcher = args.launcher
    merge_cfg_options(cfg, args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg, task


def merge_cfg_options(cfg, options):
    """Merge ``--cfg-options`` into ``cfg`` like ``Config.merge_from_dict``.

    Setting a key below an ``init_cfg`` that the config leaves None (e.g.
    ``model.backbone.init_cfg.checkpoint=PATH`` on a from-scratch config)
    creates ``dict(type='Pretrained', ...)``; setting a key below any other
    non-dict value is a :class:`ConfigError` naming the option.
    """
    if not options:
        return
    for key in options:
        parts = key.split('.')
        node = cfg
        for depth, name in enumerate(parts[:-1]):
            if not isinstance(node, (dict, Config)) or name not in node:
                break
            if node[name] is None and name == 'init_cfg':
                node[name] = ConfigDict(type='Pretrained')
            elif not isinstance(node[name], (dict, list, tuple)):
                parent = '.'.join(parts[:depth + 1])
                raise ConfigError(
                    f'--cfg-options {key}: {parent} is {node[name]!r} in this '
                    f'config, not a dict; set {parent}=... as a whole instead')
            node = node[name]
    cfg.merge_from_dict(options)


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


def use_preemption_hook(cfg, signals=('SIGTERM', )):
    """Add a :class:`~mmevit.engine.PreemptionHook` for ``signals`` to the
    config's ``custom_hooks`` (in place), unless it has one.

    Raises:
        ConfigError: A signal name is unknown; names it.
    """
    hooks = cfg.setdefault('custom_hooks', [])
    if any(hook.get('type') in ('mmevit.PreemptionHook', 'PreemptionHook',
                                PreemptionHook) for hook in hooks):
        return
    for name in signals:
        try:
            signal_number(name)
        except ValueError as err:
            raise ConfigError(f'--preempt-signal: {err}') from None
    hooks.append(dict(type='mmevit.PreemptionHook', signals=list(signals)))


def use_safe_checkpoint_hook(cfg):
    """Make a config's mmengine ``CheckpointHook`` a :class:`SafeCheckpointHook`
    (in place). Returns True if it was replaced."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if hook is not None and hook.get('type') in ('CheckpointHook',
                                                 CheckpointHook):
        hook['type'] = 'mmevit.SafeCheckpointHook'
        return True
    return False
