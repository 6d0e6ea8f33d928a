"""A check, right after a model is built, that an EfficientViT model's
backbone, neck and head widths fit together.

Without it a mismatch fails at the first forward, deep inside a convolution
(``expected input[2, 96, 80, 80] to have 128 channels``), naming no config
key.
"""
from torch import nn

from ..engine import unwrap_model
from ..errors import ConfigError
from ..models import EfficientViT

_HEADS = ('rpn_head', 'bbox_head', 'decode_head', 'auxiliary_head')


def check_model_channels(model):
    """Raise :class:`ConfigError` when the neck's ``in_channels`` differ from
    the EfficientViT outputs, or a head's ``in_channels`` from the neck's
    ``out_channels``. Models without an EfficientViT backbone and a neck
    pass unchecked."""
    model = unwrap_model(model)
    backbone = getattr(model, 'backbone', None)
    neck = getattr(model, 'neck', None)
    if not isinstance(backbone, EfficientViT) or neck is None:
        return
    expected = [backbone.embed_dims[i] for i in backbone.out_indices]
    given = getattr(neck, 'in_channels', None)
    if given is not None and list(given) != expected:
        raise ConfigError(
            f'model.neck.in_channels={list(given)} does not fit the backbone, '
            f'which gives channels {expected} (EfficientViT embed_dims at '
            f'out_indices {list(backbone.out_indices)}); set '
            f'model.neck.in_channels={expected}')
    width = getattr(neck, 'out_channels', None)
    if not isinstance(width, int):
        return
    for name in _HEADS:
        heads = getattr(model, name, None)
        for head in heads if isinstance(heads, nn.ModuleList) else [heads]:
            _check_head(name, getattr(head, 'in_channels', None), width)


def _check_head(name, channels, width):
    if channels is None:
        return
    listed = channels if isinstance(channels, (list, tuple)) else [channels]
    if any(c != width for c in listed):
        want = [width] * len(listed) if isinstance(channels,
                                                   (list, tuple)) else width
        raise ConfigError(
            f'model.{name}.in_channels={channels} does not fit the neck, '
            f'which gives {width} channels; set model.{name}.in_channels='
            f'{want}')
