"""Strict loading of whole detector/segmentor checkpoints.

mmengine loads ``load_from`` and test checkpoints with ``strict=False``: a
checkpoint of another arch, or a backbone-only file, only prints warnings and
leaves random weights behind. These functions refuse any checkpoint whose
keys or shapes do not fit the model, after converting the EfficientViT
backbone keys of official (mmdet 2.x) checkpoints.
"""
from mmengine.model import is_model_wrapper

from .conversion import convert_efficientvit_state_dict, guess_arch_name, to_tensor_dict
from .key_check import accept_unfused, key_problems
from .safe_load import CheckpointError, load_checkpoint_file

_WRAPPERS = ('state_dict', 'model')


def model_weights(checkpoint):
    """The tensors of a checkpoint's model, ``module.`` prefixes removed."""
    state = checkpoint
    for key in _WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    state = to_tensor_dict(state) if isinstance(state, dict) else {}
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state.items()}


def _efficientvit_prefixes(model):
    from ..models import EfficientViT
    return {name + '.': module for name, module in model.named_modules()
            if isinstance(module, EfficientViT) and name}


def _convert_backbones(model, weights):
    """Bring the weights of every EfficientViT inside ``model`` into mmevit's
    layout (official key names, other attention windows)."""
    weights = dict(weights)
    for prefix, backbone in _efficientvit_prefixes(model).items():
        part = {k[len(prefix):]: weights.pop(k) for k in list(weights)
                if k.startswith(prefix)}
        if part:
            part = convert_efficientvit_state_dict(part, backbone.window_sizes)
            weights.update({prefix + k: v for k, v in part.items()})
    return weights


def _arch_hint(model, weights):
    from ..models import EfficientViT
    hints = []
    for prefix, backbone in _efficientvit_prefixes(model).items():
        part = {k[len(prefix):]: v for k, v in weights.items()
                if k.startswith(prefix)}
        wanted = next((n for n, a in EfficientViT.arch_zoo.items()
                       if a == backbone.arch), f'custom {backbone.arch}')
        guess = guess_arch_name(part, EfficientViT.arch_zoo)
        if guess and guess != wanted:
            hints.append(f'its {prefix[:-1]} looks like EfficientViT {guess}, '
                         f'the config asks for {wanted}')
        elif not part and any(k.startswith('patch_embed.') for k in weights):
            hints.append(f'it holds backbone-only weights (no '
                         f'{prefix!r} prefix): use it as '
                         f'model.{prefix}init_cfg.checkpoint instead')
    return hints


def check_model_weights(model, weights, source):
    """Raise :class:`CheckpointError` unless ``weights`` (converted) fit
    ``model`` exactly: one message naming the missing, unexpected and
    mis-shaped keys and, where it tells, the arch the weights look like."""
    expected, weights = model.state_dict(), dict(weights)
    for prefix, backbone in _efficientvit_prefixes(model).items():
        if backbone.deploy:
            accept_unfused(expected, weights, prefix)
    problems = key_problems(expected, weights)
    if not problems:
        return
    problems += _arch_hint(model, weights)
    raise CheckpointError(f'{source} does not fit the model of this config '
                          f'({type(model).__name__}): ' + '; '.join(problems))


def load_model_weights(model, checkpoint, source):
    """Load a loaded whole-model checkpoint into ``model`` strictly.

    Args:
        model (nn.Module): The detector or segmentor (or its wrapper).
        checkpoint (dict): mmengine checkpoint, official mmdet 2.x
            checkpoint or a bare state dict.
        source (str): The file it came from, for messages.

    Raises:
        CheckpointError: The weights do not fit the model.
    """
    if is_model_wrapper(model):
        model = model.module
    weights = model_weights(checkpoint)
    if not weights:
        raise CheckpointError(f'{source} holds no model weights')
    weights = _convert_backbones(model, weights)
    check_model_weights(model, weights, source)
    model.load_state_dict(weights, strict=True)


def load_model_checkpoint(model, filename):
    """Read ``filename`` safely and load it into ``model`` strictly (see
    :func:`load_model_weights`). Returns the checkpoint (with its meta)."""
    checkpoint = load_checkpoint_file(filename)
    load_model_weights(model, checkpoint, filename)
    return checkpoint
