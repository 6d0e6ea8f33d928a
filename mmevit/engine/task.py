"""Which OpenMMLab codebase a config belongs to."""
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
