"""Strict loading of pretrained weights into an EfficientViT backbone."""
from urllib.error import URLError

from mmengine.runner import CheckpointLoader

from .conversion import convert_efficientvit_state_dict, guess_arch_name, to_tensor_dict
from .key_check import accept_unfused, key_problems
from .safe_load import CheckpointError, load_checkpoint_file

_WRAPPERS = ('state_dict', 'model', 'module')


def extract_backbone_state_dict(checkpoint):
    """Backbone tensors of a classification, timm, mmengine or mmdet 2.x
    checkpoint, with ``module.``/``backbone.`` prefixes removed.

    Args:
        checkpoint (dict): A loaded checkpoint.

    Returns:
        dict[str, Tensor]: Backbone weights in their original layout.
    """
    state_dict = checkpoint
    while isinstance(state_dict, dict):
        wrapper = next((k for k in _WRAPPERS if isinstance(
            state_dict.get(k), dict)), None)
        if wrapper is None:
            break
        state_dict = state_dict[wrapper]
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in to_tensor_dict(state_dict).items()}
    if any(k.startswith('backbone.') for k in state_dict):
        state_dict = {k[len('backbone.'):]: v for k, v in state_dict.items()
                      if k.startswith('backbone.')}
    return state_dict


def read_checkpoint(source):
    """Load a checkpoint from a local path or a URL (cached by mmengine).

    Raises:
        CheckpointError: The file is missing or unreadable, or the URL cannot
            be fetched (e.g. offline); the message says how to use a local
            copy instead.
    """
    if not str(source).startswith(('http://', 'https://')):
        return load_checkpoint_file(source)
    try:
        return CheckpointLoader.load_checkpoint(source, map_location='cpu')
    except (URLError, OSError) as err:
        raise CheckpointError(
            f'cannot download the pretrained weights {source} ({err}). '
            'Download the file on a machine with network access and point '
            'the config at it, e.g. --cfg-options '
            'model.backbone.init_cfg.checkpoint=/path/to/'
            f'{str(source).rsplit("/", 1)[-1]}') from None


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
    arch_zoo = type(model).arch_zoo
    wanted = next((n for n, a in arch_zoo.items() if a == model.arch),
                  f'custom {model.arch}')
    guess = guess_arch_name(weights, arch_zoo)
    hint = (f'; the checkpoint looks like {guess}, the config asks for '
            f'{wanted}' if guess and guess != wanted else '')
    raise CheckpointError(f'{source} does not fit EfficientViT '
                          f'arch {wanted}: ' + '; '.join(problems) + hint)


def load_pretrained_backbone(model, source):
    """Load official, timm or mmevit weights into ``model`` strictly.

    Args:
        model (EfficientViT): The backbone.
        source (str): Path or URL of the checkpoint.
    """
    weights = extract_backbone_state_dict(read_checkpoint(source))
    if not weights:
        raise CheckpointError(f'{source} holds no tensors to load')
    weights = convert_efficientvit_state_dict(weights, model.window_sizes)
    check_backbone_weights(model, weights, source)
    model.load_state_dict(weights, strict=True)
