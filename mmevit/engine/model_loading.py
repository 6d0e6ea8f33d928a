"""Strict loading of whole detector/segmentor checkpoints.

mmengine loads ``load_from`` and test checkpoints with ``strict=False``: a
checkpoint of another arch, or a backbone-only file, only prints warnings and
leaves random weights behind. These functions refuse any checkpoint whose
keys or shapes do not fit the model. The EfficientViT backbones convert
their part of official (mmdet 2.x) checkpoints as they load it (their load
pre-hook); the check is made on the converted weights.
"""
from ..checkpoint import CheckpointError, load_checkpoint_file, model_weights
from ..checkpoint.key_check import accept_unfused, key_problems
from ..models import EfficientViT
from ..models.backbones.key_conversion import guess_arch_name
from ..models.backbones.pretrained import arch_name, load_converted
from .wrapped_model import unwrap_model


def _efficientvit_prefixes(model):
    return {name + '.': module for name, module in model.named_modules()
            if isinstance(module, EfficientViT) and name}


def _arch_hint(model, weights):
    hints = []
    for prefix, backbone in _efficientvit_prefixes(model).items():
        part = {k[len(prefix):]: v for k, v in weights.items()
                if k.startswith(prefix)}
        wanted = arch_name(backbone)
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
        model (nn.Module): The detector or segmentor, or a wrapper of it
            (distributed, or test-time augmentation, whose checkpoint is
            the wrapped model's, as mmengine loads it).
        checkpoint (dict): mmengine checkpoint, official mmdet 2.x
            checkpoint or a bare state dict.
        source (str): The file it came from, for messages.

    Raises:
        CheckpointError: The weights do not fit the model (the parts that
            fit may have been loaded, as torch's strict loading does).
    """
    model = unwrap_model(model)
    weights = model_weights(checkpoint)
    if not weights:
        raise CheckpointError(f'{source} holds no model weights')
    weights, error = load_converted(
        model, weights, _efficientvit_prefixes(model).values())
    check_model_weights(model, weights, source)
    if error is not None:
        raise error


def load_model_checkpoint(model, filename):
    """Read ``filename`` safely and load it into ``model`` strictly (see
    :func:`load_model_weights`). Returns the checkpoint (with its meta)."""
    checkpoint = load_checkpoint_file(filename)
    load_model_weights(model, checkpoint, filename)
    return checkpoint
