"""Loading checkpoint files with torch's ``weights_only`` unpickler.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, and the
checkpoints written by mmengine's Runner no longer load: their message hub
pickles mmengine's ``HistoryBuffer`` with numpy arrays and scalars. mmevit
keeps the restricted unpickler and allowlists exactly those types. Anything
else a pickle asks for (``os.system``, ``builtins.eval`` ...) is refused.
"""
import os.path as osp
import pickle
import re

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from ..errors import CheckpointError


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
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries = [np.ndarray, np.dtype]
    # numpy 1.x pickles name numpy.core, numpy 2.x numpy._core.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    entries += [type(np.dtype(t)) for t in (
        np.float64, np.float32, np.float16, np.int64, np.int32, np.int16,
        np.int8, np.uint8, np.bool_)]
    return entries


SAFE_GLOBALS = [
    HistoryBuffer,
    (_history_buffer_method, 'builtins.getattr'),
    *_numpy_globals(),
]


def allow_mmengine_checkpoint_types():
    """Add :data:`SAFE_GLOBALS` to torch's weights_only allowlist."""
    torch.serialization.add_safe_globals(SAFE_GLOBALS)


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
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as err:
        refused = re.search(r'GLOBAL (\S+)', str(err))
        if refused:
            raise CheckpointError(
                f'refused to load {filename}: its pickle asks for '
                f'{refused.group(1)}, which is not an allowed checkpoint '
                f'type (tensors, numpy arrays, mmengine HistoryBuffer)'
            ) from None
        raise CheckpointError(f'{filename} is not a PyTorch checkpoint '
                              f'({_first_line(err)})') from None
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


def _first_line(err):
    """First sentence of an error, for one-line messages."""
    text = str(err).strip().split('\n')[0].split('. ')[0]
    return f'{type(err).__name__}: {text}' if text else type(err).__name__


def _load_from_local(filename, map_location):
    return load_checkpoint_file(filename, map_location)


def register_local_checkpoint_loader():
    """Route mmengine's local checkpoint loading (``load_from``, ``--resume``,
    ``init_cfg=Pretrained``) through :func:`load_checkpoint_file`."""
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)
