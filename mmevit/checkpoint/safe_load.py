"""Loading checkpoint files with a restricted unpickler.

Checkpoints are pickles, and an unrestricted unpickler runs whatever a file
asks for. mmevit loads every checkpoint with an allowlist: torch's own
tensor types plus exactly the types mmengine's Runner writes (its message hub
pickles ``HistoryBuffer`` with numpy arrays and scalars). Anything else a
pickle asks for (``os.system``, ``builtins.eval`` ...) is refused.

On torch 2.6+ the allowlist extends torch's ``weights_only`` unpickler for
the one call; older torch (whose ``weights_only`` allowlist is fixed) loads
through :data:`ALLOWLIST_PICKLE`, a ``pickle`` module whose unpickler
resolves only the allowlisted names.
"""
import _codecs
import _compat_pickle
import collections
import os.path as osp
import pickle
import re
import types

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from ..errors import CheckpointError
from ..stack import torch_loads_weights_only


def _history_buffer_method(owner, name):
    """Stand-in for ``builtins.getattr`` in checkpoints.

    HistoryBuffer pickles its statistics as ``getattr(HistoryBuffer, 'min')``;
    this resolves exactly such public methods and nothing else.
    """
    if owner is HistoryBuffer and not name.startswith('_') and callable(
            getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({owner!r}, {name!r}) is not allowed in a checkpoint')


def _numpy_globals():
    try:  # numpy 2.x
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x (1.26 may have numpy._core, not this)
        from numpy.core import multiarray
    entries = [np.ndarray, np.dtype]
    # numpy 1.x pickles name numpy.core, numpy 2.x numpy._core.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    entries += [type(np.dtype(t)) for t in (
        np.float64, np.float32, np.float16, np.int64, np.int32, np.int16,
        np.int8, np.uint8, np.bool_)]
    return entries


def allowed_globals():
    """The globals beyond torch's own that a checkpoint may name, as
    objects or ``(object, 'module.name')`` pairs (the form of torch's
    ``safe_globals``)."""
    return [HistoryBuffer, (_history_buffer_method, 'builtins.getattr'),
            *_numpy_globals()]


def _torch_globals():
    """The globals torch's own weights_only unpickler allows (tensors,
    parameters, dtypes, sizes, the rebuild functions), for older torch."""
    entries = [collections.OrderedDict, torch.nn.Parameter, torch.Size,
               torch.Tensor, torch.serialization._get_layout,
               torch._tensor._rebuild_from_type_v2,
               (_codecs.encode, '_codecs.encode')]
    entries += [(dtype, str(dtype)) for dtype in vars(torch).values()
                if isinstance(dtype, torch.dtype)]
    entries += [(cls, f'{cls.__module__}.{cls.__name__}')
                for cls in torch._tensor_classes]
    entries += [(getattr(torch._utils, name), f'torch._utils.{name}')
                for name in ('_rebuild_tensor', '_rebuild_tensor_v2',
                             '_rebuild_tensor_v3', '_rebuild_parameter',
                             '_rebuild_parameter_with_state')
                if hasattr(torch._utils, name)]
    return entries


def _allowlist():
    """``{'module.name': object}`` of the globals a checkpoint may name on
    torch < 2.6: torch's and :func:`allowed_globals`."""
    named = {}
    for entry in _torch_globals() + allowed_globals():
        obj, name = entry if isinstance(entry, tuple) else (
            entry, f'{entry.__module__}.{entry.__qualname__}')
        named[name] = obj
    return named


class _AllowlistUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allowlisted globals."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._allowed = _allowlist()

    def find_class(self, module, name):
        # protocol 2 pickles (torch.save's) name Python 2 modules, such as
        # __builtin__ for builtins; pickle.Unpickler.find_class maps them
        module, name = _compat_pickle.NAME_MAPPING.get(
            (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module),
                             name))
        try:
            return self._allowed[f'{module}.{name}']
        except KeyError:
            raise pickle.UnpicklingError(
                f'Unsupported global: GLOBAL {module}.{name} is not '
                'allowed') from None


def _allowlist_load(file, **kwargs):
    return _AllowlistUnpickler(file, **kwargs).load()


#: A ``pickle_module`` for ``torch.load`` on torch < 2.6.
ALLOWLIST_PICKLE = types.ModuleType('mmevit_allowlist_pickle')
ALLOWLIST_PICKLE.Unpickler = _AllowlistUnpickler
ALLOWLIST_PICKLE.load = _allowlist_load


def _restricted_torch_load(filename, map_location):
    if torch_loads_weights_only():
        with torch.serialization.safe_globals(allowed_globals()):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    return torch.load(filename, map_location=map_location,
                      weights_only=False, pickle_module=ALLOWLIST_PICKLE)


def load_checkpoint_file(filename, map_location='cpu'):
    """Load a local ``.pth``/``.safetensors`` file safely.

    Args:
        filename (str): Path to the file.
        map_location (str | callable): As for ``torch.load``.
            Defaults to 'cpu'.

    Returns:
        dict: The checkpoint.

    Raises:
        CheckpointError: One line naming the file and what is wrong.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise CheckpointError(f'checkpoint file not found: {filename}')
    if filename.endswith('.safetensors'):
        return _load_safetensors(filename)
    try:
        return _restricted_torch_load(filename, map_location)
    except pickle.UnpicklingError as err:
        raise CheckpointError(_refusal(filename, err)) from None
    except Exception as err:  # the unpickler fails in many ways on junk
        raise CheckpointError(f'{filename} is corrupt, truncated or not a '
                              f'PyTorch checkpoint ({_first_line(err)})'
                              ) from None


def _load_safetensors(filename):
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(filename)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f'{filename} is not a readable safetensors '
                              f'file ({_first_line(err)})') from None


def _refusal(filename, err):
    """One line on why the unpickler refused ``filename``."""
    text = str(err)
    refused = re.search(r'GLOBAL (\S+)', text)
    if refused:
        return (f'refused to load {filename}: its pickle asks for '
                f'{refused.group(1)}, which is not an allowed checkpoint '
                'type (tensors, numpy arrays, mmengine HistoryBuffer)')
    getattr_call = re.search(r'getattr\(.*?\) is not allowed in a checkpoint',
                             text)
    if getattr_call:  # _history_buffer_method's refusal, maybe wrapped
        return f'refused to load {filename}: {getattr_call.group()}'
    return f'{filename} is not a PyTorch checkpoint ({_first_line(err)})'


def _first_line(err):
    """First sentence of an error, for one-line messages."""
    text = str(err).strip().split('\n')[0].split('. ')[0]
    return f'{type(err).__name__}: {text}' if text else type(err).__name__


def _load_from_local(filename, map_location):
    return load_checkpoint_file(filename, map_location)


def register_local_checkpoint_loader():
    """Route mmengine's local checkpoint loading (``load_from``, ``--resume``,
    ``init_cfg=Pretrained``) through :func:`load_checkpoint_file`.

    Needed from torch 2.6 on, whose ``torch.load`` refuses mmengine's own
    runner checkpoints; ``import mmevit`` calls it there (see the README,
    *What importing mmevit changes*).
    """
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)
