"""mmevit against the plain official algorithm, with identical weights.

The reference is :class:`mmevit.testing.OfficialEfficientViT`, a faithful
eager implementation of the official code. Both models get the same random
weights (the official state dict converted to mmevit's layout), so their
outputs must agree and their timings are directly comparable.
"""
import copy

import torch
from mmcv.cnn import fuse_conv_bn

from ..checkpoint import convert_efficientvit_state_dict
from ..models import EfficientViT
from ..testing import OfficialEfficientViT, official_state_dict
from .onnx_export import relative_difference

#: Variants timed by ``--compare-official``; the first is the baseline.
VARIANTS = ('official', 'official, BN folded', 'mmevit', 'mmevit deploy')


def build_variants(arch, window_sizes=(7, 7, 7), seed=0):
    """The four :data:`VARIANTS` of one arch, in eval mode, same weights.

    ``official, BN folded`` is the reference with every Conv+BN pair folded
    the way the official speed test does before timing (its algorithm is
    otherwise untouched); ``mmevit deploy`` is :meth:`EfficientViT.
    switch_to_deploy`.

    Args:
        arch (str): 'm0'..'m5'.
        window_sizes (Sequence[int]): Window per stage. Defaults to 7s.
        seed (int): Seed of the random weights. Defaults to 0.

    Returns:
        dict[str, nn.Module]: The models, by variant name.
    """
    window_sizes = list(window_sizes)
    reference = OfficialEfficientViT(**EfficientViT.arch_zoo[arch],
                                     window_sizes=window_sizes).eval()
    weights = dict(official_state_dict(reference, seed))
    model = EfficientViT(arch=arch, window_sizes=window_sizes).eval()
    model.load_state_dict(
        convert_efficientvit_state_dict(weights, window_sizes))
    deployed = copy.deepcopy(model)
    deployed.switch_to_deploy()
    return {
        'official': reference,
        'official, BN folded': fuse_conv_bn(copy.deepcopy(reference)),
        'mmevit': model,
        'mmevit deploy': deployed,
    }


def max_relative_difference(expected, actual):
    """Worst :func:`relative_difference` over matching output maps."""
    return max(relative_difference(e, a) for e, a in zip(expected, actual))


def output_differences(variants, x):
    """Max relative difference of every variant's outputs from the first
    variant's (the official reference) on input ``x``."""
    with torch.inference_mode():
        outputs = {name: model(x) for name, model in variants.items()}
    baseline = outputs[next(iter(variants))]
    return {name: max_relative_difference(baseline, out)
            for name, out in outputs.items()}
