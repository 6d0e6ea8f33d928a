"""The software stack mmevit supports, and the torch APIs that differ in it.

mmevit runs from torch 2.1 (the newest torch with prebuilt mmcv 2.1.0 wheels,
what most mmdet 3.x users have) to the newest torch. The few torch APIs it
needs that arrived after 2.1 are reached through this module; the ONNX
exporter alone needs a newer torch (:data:`EXPORT_MIN_TORCH`).
"""
import re
from importlib import import_module, metadata

#: Oldest version of each package ``import mmevit`` works with; the README's
#: support table says which versions are tested.
MIN_VERSIONS = {'torch': '2.1', 'mmengine': '0.10.3', 'mmcv': '2.0.0'}

#: Oldest torch whose exporter ``tools/deploy.py`` uses (``torch.export``
#: with ``Dim.DYNAMIC``, ``torch.onnx.export(dynamo=True)`` with a custom
#: translation table, ``torch.library.custom_op``).
EXPORT_MIN_TORCH = '2.6'


def release(version):
    """The numeric release of a version string: ``'2.1.2+cu121'`` ->
    ``(2, 1, 2)``, ``'2.0.0rc4'`` -> ``(2, 0, 0)``."""
    match = re.match(r'\d+(\.\d+)*', version)
    if match is None:
        raise ValueError(f'not a version: {version!r}')
    return tuple(int(part) for part in match.group().split('.'))


def installed_version(package):
    """The installed version of ``package`` (its distribution's, else its
    module's ``__version__``: conda or source builds, mmcv-lite), or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        pass
    try:
        return import_module(package).__version__
    except (ImportError, AttributeError):
        return None


def check_stack(min_versions=MIN_VERSIONS):
    """Raise ImportError, in one line naming the installed and the required
    versions, if a package is missing or older than ``min_versions``."""
    for package, minimum in min_versions.items():
        found = installed_version(package)
        if found is None or release(found) < release(minimum):
            have = 'is not installed' if found is None else f'{found} is installed'
            raise ImportError(f'mmevit needs {package}>={minimum}, but '
                              f'{package} {have}')


def torch_at_least(version):
    """True if the installed torch is ``version`` or newer."""
    import torch
    return release(torch.__version__) >= release(version)


def torch_loads_weights_only():
    """True if ``torch.load`` defaults to ``weights_only=True`` (torch 2.6+),
    so mmengine's own loading of runner checkpoints needs mmevit's help."""
    return torch_at_least('2.6')


def is_compiling():
    """True while torch.compile or torch.export records the computation
    (``torch.compiler.is_compiling``, public from torch 2.3).

    Older torch has no public query, and this is False there: torch.compile
    then guards on the sizes the code branched on (the window padding) and
    recompiles when they change, and the exporter needs torch 2.6 anyway.
    """
    import torch
    compiler = getattr(torch, 'compiler', None)
    return bool(compiler is not None and hasattr(compiler, 'is_compiling')
                and compiler.is_compiling())


def register_load_state_dict_pre_hook(module, hook):
    """``module.register_load_state_dict_pre_hook(hook)``: public from torch
    2.5, the same hook through the ``with_module`` form before."""
    if hasattr(module, 'register_load_state_dict_pre_hook'):
        return module.register_load_state_dict_pre_hook(hook)
    return module._register_load_state_dict_pre_hook(hook, with_module=True)


def require_export_torch():
    """Raise :class:`~mmevit.errors.ConfigError` on a torch too old for the
    ONNX exporter, naming both versions."""
    import torch

    from .errors import ConfigError
    if not torch_at_least(EXPORT_MIN_TORCH):
        raise ConfigError(
            f'ONNX export needs torch>={EXPORT_MIN_TORCH} (torch.export and '
            f'its ONNX exporter); torch {torch.__version__} is installed. '
            'Running an existing .onnx file works on this torch')
