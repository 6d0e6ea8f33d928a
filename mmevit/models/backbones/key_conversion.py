"""Pure conversion of EfficientViT backbone weights to mmevit's key layout.

A leaf module: it imports torch only, so that the backbone (whose load
pre-hook is the one place the conversion runs) and the tools that convert
files ahead of time use the same functions. Two key layouts are understood
(checkpoint wrappers and ``backbone.`` prefixes are removed first, by
:mod:`mmevit.checkpoint.reading`):

* official (Cream / EfficientViT model zoo): ``patch_embed.0.c.weight``,
  ``blocks2.1.conv1.c.weight`` ... where ``blocks2.0``-``2.2`` are the
  transition into stage 2;
* timm (``efficientvit_m*.r224_in1k``): ``patch_embed.conv1.conv.weight``,
  ``stages.1.downsample.patchmerge...``; this is also mmevit's own layout.
"""
import math
import re

import torch.nn.functional as F

_OFFICIAL_BLOCK = re.compile(r'^blocks(\d)\.(\d+)\.(.*)$')
_OFFICIAL_STEM = re.compile(r'^patch_embed\.(\d)\.(.*)$')
_STAGE = re.compile(r'^stages\.(\d)\.')
_TRANSITION = ('downsample.res1', 'downsample.patchmerge', 'downsample.res2')
_DROPPED = re.compile(r'(^head\.|^head_dist\.|attention_bias_idxs$)')


def is_official_layout(state_dict):
    """True if the keys follow the official ``blocksN`` naming."""
    return any(_OFFICIAL_BLOCK.match(k) or _OFFICIAL_STEM.match(k)
               for k in state_dict)


def _rename_conv_bn(rest):
    """Official ConvBN children are ``c``/``bn``; mmevit's ``conv``/``bn``."""
    return re.sub(r'(^|\.)c\.', r'\1conv.', rest)


def official_key_to_mmevit(key):
    """Map one official key to the mmevit/timm name.

    Args:
        key (str): A key such as ``blocks2.3.mixer.m.attn.qkvs.0.c.weight``.

    Returns:
        str: e.g. ``stages.1.blocks.0.mixer.m.attn.qkvs.0.conv.weight``.
    """
    stem = _OFFICIAL_STEM.match(key)
    if stem:
        index, rest = int(stem.group(1)), stem.group(2)
        return f'patch_embed.conv{index // 2 + 1}.{_rename_conv_bn(rest)}'
    block = _OFFICIAL_BLOCK.match(key)
    if not block:
        return key
    stage = int(block.group(1)) - 1
    index, rest = int(block.group(2)), _rename_conv_bn(block.group(3))
    if stage == 0:
        return f'stages.0.blocks.{index}.{rest}'
    if index < len(_TRANSITION):
        return f'stages.{stage}.{_TRANSITION[index]}.{rest}'
    return f'stages.{stage}.blocks.{index - len(_TRANSITION)}.{rest}'


def resize_attention_biases(biases, window_size):
    """Resize a (heads, S*S) bias table to (heads, window_size**2).

    Bicubic over the S x S grid of (|dy|, |dx|) offsets, the rule of the
    official downstream loader (align_corners False).

    Args:
        biases (Tensor): Table of shape (heads, S*S).
        window_size (int): Target window side.
    """
    heads, length = biases.shape
    side = math.isqrt(length)
    if side * side != length:
        raise ValueError(f'attention_biases of shape {tuple(biases.shape)} '
                         'is not a square offset table')
    if side == window_size:
        return biases
    grid = biases.reshape(1, heads, side, side).float()
    grid = F.interpolate(grid, size=(window_size, window_size),
                         mode='bicubic', align_corners=False)
    return grid.reshape(heads, window_size * window_size).to(biases.dtype)


def convert_efficientvit_state_dict(state_dict, window_sizes=(7, 7, 7)):
    """Convert backbone weights of any known layout to mmevit's layout.

    Renames official keys, drops the classifier heads and the
    ``attention_bias_idxs`` buffers, turns 2-D squeeze-excite weights into
    1x1 convolutions, and resizes every ``attention_biases`` table to its
    stage's window. Idempotent on mmevit weights.

    Args:
        state_dict (dict[str, Tensor]): Backbone weights, prefixes removed.
        window_sizes (Sequence[int]): Window side of each stage.
            Defaults to (7, 7, 7).

    Returns:
        dict[str, Tensor]: Weights in mmevit's layout.
    """
    official = is_official_layout(state_dict)
    converted = {}
    for key, value in state_dict.items():
        if _DROPPED.search(key):
            continue
        if official:
            key = official_key_to_mmevit(key)
        if re.search(r'\.se\.fc[12]\.weight$', key) and value.dim() == 2:
            value = value[:, :, None, None]
        if key.endswith('attention_biases'):
            stage = _STAGE.match(key)
            if stage is None:
                raise KeyError(f'attention_biases key {key!r} names no stage')
            value = resize_attention_biases(
                value, window_sizes[int(stage.group(1))])
        converted[key] = value
    return converted


def describe_arch(state_dict):
    """Read widths, depths and heads from mmevit-layout weights.

    Returns:
        dict: ``embed_dims``, ``depths`` and ``num_heads`` lists (entries may
        be None where the weights do not tell).
    """
    dims, depths, heads = [], [], []
    for stage in range(3):
        prefix = f'stages.{stage}.blocks.'
        blocks = {int(k[len(prefix):].split('.')[0])
                  for k in state_dict if k.startswith(prefix)}
        depths.append(len(blocks))
        dw = state_dict.get(f'{prefix}0.dw0.m.conv.weight')
        dims.append(None if dw is None else int(dw.shape[0]))
        qkv_prefix = f'{prefix}0.mixer.m.attn.qkvs.'
        heads.append(len({k[len(qkv_prefix):].split('.')[0]
                          for k in state_dict if k.startswith(qkv_prefix)})
                     or None)
    return dict(embed_dims=dims, depths=depths, num_heads=heads)


def guess_arch_name(state_dict, arch_zoo):
    """Name of the ``arch_zoo`` entry whose widths, depths and heads match
    the weights, or None."""
    found = describe_arch(state_dict)
    for name, arch in arch_zoo.items():
        if all(found[k] == list(arch[k]) for k in found):
            return name
    return None

