"""Reading a checkpoint's weights: from a local file or a URL, out of the
wrappers and prefixes the checkpoints of each codebase put around them."""
import os
import os.path as osp
from urllib.error import URLError
from urllib.parse import urlparse

import torch

from ..errors import CheckpointError
from .safe_load import load_checkpoint_file

#: Keys under which checkpoints keep their weights: mmengine's and mmdet
#: 2.x's ``state_dict``, the official classification release's ``model``,
#: and ``module`` of some DistributedDataParallel saves.
WRAPPERS = ('state_dict', 'model', 'module')


def read_checkpoint(source):
    """Load a checkpoint from a local path or a URL, with the restricted
    unpickler either way (:func:`load_checkpoint_file`).

    A URL is downloaded once into torch's hub cache
    (``$TORCH_HOME/hub/checkpoints``, where mmengine and ``torch.hub`` keep
    checkpoints too) and read from there.

    Raises:
        CheckpointError: The file is missing or unreadable, or the URL cannot
            be fetched (e.g. offline); the message says how to use a local
            copy instead.
    """
    if not str(source).startswith(('http://', 'https://')):
        return load_checkpoint_file(source)
    return load_checkpoint_file(_cached_download(str(source)))


def _cached_download(url):
    name = osp.basename(urlparse(url).path)
    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(folder, name)
    if osp.isfile(path):
        return path
    os.makedirs(folder, exist_ok=True)
    try:  # into a temporary file, renamed when complete
        torch.hub.download_url_to_file(url, path, progress=False)
    except (URLError, OSError) as err:
        raise CheckpointError(
            f'cannot download the pretrained weights {url} ({err}). '
            'Download the file on a machine with network access and point '
            'the config at it, e.g. --cfg-options '
            f'model.backbone.init_cfg.checkpoint=/path/to/{name}') from None
    return path


def model_weights(checkpoint):
    """The tensors of a loaded checkpoint, out of its :data:`WRAPPERS`, with
    ``module.`` prefixes removed.

    Args:
        checkpoint (dict): A loaded checkpoint or a bare state dict.

    Returns:
        dict[str, Tensor]: The weights (empty if there are none).
    """
    state = checkpoint
    while isinstance(state, dict):
        wrapper = next((k for k in WRAPPERS if isinstance(state.get(k), dict)),
                       None)
        if wrapper is None:
            break
        state = state[wrapper]
    if not isinstance(state, dict):
        return {}
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state.items() if isinstance(v, torch.Tensor)}


def extract_backbone_state_dict(checkpoint):
    """Backbone tensors of a classification, timm, mmengine or mmdet 2.x
    checkpoint: :func:`model_weights`, with the ``backbone.`` prefix removed
    when the checkpoint holds a whole model.

    Args:
        checkpoint (dict): A loaded checkpoint.

    Returns:
        dict[str, Tensor]: Backbone weights in their original layout.
    """
    state_dict = model_weights(checkpoint)
    if any(k.startswith('backbone.') for k in state_dict):
        state_dict = {k[len('backbone.'):]: v for k, v in state_dict.items()
                      if k.startswith('backbone.')}
    return state_dict
