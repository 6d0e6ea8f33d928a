"""``--cfg-options`` merging with errors that name the option."""
from mmengine.config import Config, ConfigDict

from ..errors import ConfigError


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
