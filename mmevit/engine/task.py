"""Which OpenMMLab codebase a config belongs to, and its registries."""
from importlib import import_module

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


def task_registry(task, name):
    """The registry ``name`` (``'MODELS'``, ``'DATASETS'``, ...) of
    ``task``'s codebase, with all its modules registered and its scope the
    default one."""
    import_module(f'{task}.utils').register_all_modules(init_default_scope=True)
    return getattr(import_module(f'{task}.registry'), name)
