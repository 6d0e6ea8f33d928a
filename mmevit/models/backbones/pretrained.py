"""Strict loading of weights into models that hold EfficientViT backbones.

The backbone's load pre-hook converts official and other-window weights
(:mod:`.key_conversion`), the one place the conversion runs; the functions
here load through it and check what it produced.
"""
from ...checkpoint import CheckpointError, extract_backbone_state_dict, read_checkpoint
from ...checkpoint.key_check import accept_unfused, key_problems
from ...stack import register_load_state_dict_pre_hook
from .key_conversion import guess_arch_name


def load_converted(model, weights, backbones):
    """``model.load_state_dict(weights, strict=False)``, returning the
    weights as the ``backbones`` (modules inside ``model``) hold them after
    their load pre-hook converted their part, and the error torch raised
    (shape mismatches), or None.

    Parts of weights that do not fit are loaded as torch loads them; the
    caller checks the returned weights and refuses them.
    """
    converted = dict(weights)

    def record(module, state_dict, prefix, *args):
        for key in [k for k in converted if k.startswith(prefix)]:
            del converted[key]
        converted.update((k, v) for k, v in state_dict.items()
                         if k.startswith(prefix))

    handles = [register_load_state_dict_pre_hook(b, record) for b in backbones]
    try:
        model.load_state_dict(weights, strict=False)
    except RuntimeError as err:
        return converted, err
    finally:
        for handle in handles:
            handle.remove()
    return converted, None


def arch_name(model):
    """The ``arch_zoo`` name of a backbone's arch, or ``custom {...}``."""
    return next((n for n, a in type(model).arch_zoo.items()
                 if a == model.arch), f'custom {model.arch}')


def check_backbone_weights(model, weights, source):
    """Raise if ``weights`` (mmevit layout) do not fit ``model`` exactly.

    The message names the missing, unexpected and mis-shaped keys and, when
    the weights match another arch of the zoo, that arch.
    """
    expected, weights = model.state_dict(), dict(weights)
    if model.deploy:
        accept_unfused(expected, weights)
    problems = key_problems(expected, weights)
    if not problems:
        return
    wanted = arch_name(model)
    guess = guess_arch_name(weights, type(model).arch_zoo)
    hint = (f'; the checkpoint looks like {guess}, the config asks for '
            f'{wanted}' if guess and guess != wanted else '')
    raise CheckpointError(f'{source} does not fit EfficientViT '
                          f'arch {wanted}: ' + '; '.join(problems) + hint)


def load_pretrained_backbone(model, source):
    """Load official, timm or mmevit weights into ``model`` strictly.

    Args:
        model (EfficientViT): The backbone.
        source (str): Path or URL of the checkpoint.

    Raises:
        CheckpointError: The file holds no weights, or weights that do not
            fit the backbone (see :func:`check_backbone_weights`).
    """
    weights = extract_backbone_state_dict(read_checkpoint(source))
    if not weights:
        raise CheckpointError(f'{source} holds no tensors to load')
    weights, error = load_converted(model, weights, [model])
    check_backbone_weights(model, weights, source)
    if error is not None:
        raise error
