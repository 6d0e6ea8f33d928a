"""mmevit against the official EfficientViT code, with identical weights.

The baseline is the line-by-line transcription of the official downstream
code kept with the tests (``tests/official/efficientvit.py``: its
``EfficientViT``, the ``EfficientViT_m0`` .. ``EfficientViT_m5`` settings and
``replace_batchnorm``). Both networks get the same random weights (the
official state dict converted to mmevit's layout), so their outputs must
agree and their timings are directly comparable.
"""
import copy
import importlib.util
import os.path as osp

import torch

from mmevit.checkpoint import convert_efficientvit_state_dict
from mmevit.models import EfficientViT

OFFICIAL_FILE = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..',
                         'tests', 'official', 'efficientvit.py')
#: Variants timed by ``--compare-official``; the first is the baseline.
VARIANTS = ('official', 'official, BN folded', 'mmevit', 'mmevit deploy')


def load_official_code(path=OFFICIAL_FILE):
    """The transcribed official module, loaded from its file (``tests/`` is
    not a package and not installed)."""
    spec = importlib.util.spec_from_file_location('official_efficientvit',
                                                  osp.normpath(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize_weights(module, seed=0):
    """Random values (normal x 0.2; BN running variances ``|normal x 0.2|
    + 0.5``) in every float tensor of ``module``, in place: zero-initialised
    branches would hide differences between the implementations."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.randn(tensor.shape, generator=gen) * 0.2
                if name.endswith('running_var'):
                    values = values.abs() + 0.5
                tensor.copy_(values)
    return module


def build_variants(arch, seed=0):
    """The four :data:`VARIANTS` of one arch, in eval mode, same weights.

    ``official, BN folded`` is the official network after the official
    ``replace_batchnorm`` (what the official speed test times);
    ``mmevit deploy`` is :meth:`EfficientViT.switch_to_deploy`. mmevit is
    built with the official settings' widths, depths, heads and kernels.

    Args:
        arch (str): 'm0'..'m5'.
        seed (int): Seed of the random weights. Defaults to 0.

    Returns:
        dict[str, nn.Module]: The models, by variant name.
    """
    official = load_official_code()
    settings = getattr(official, f'EfficientViT_{arch}')
    reference = randomize_weights(official.EfficientViT(**settings),
                                  seed).eval()
    model = EfficientViT(arch=dict(
        embed_dims=list(settings['embed_dim']), depths=list(settings['depth']),
        num_heads=list(settings['num_heads']),
        q_kernels=list(settings['kernels'])),
        window_sizes=list(settings['window_size'])).eval()
    model.load_state_dict(convert_efficientvit_state_dict(
        reference.state_dict(), settings['window_size']))
    folded = copy.deepcopy(reference)
    official.replace_batchnorm(folded)
    deployed = copy.deepcopy(model)
    deployed.switch_to_deploy()
    return {'official': reference, 'official, BN folded': folded.eval(),
            'mmevit': model, 'mmevit deploy': deployed}


def relative_difference(expected, actual):
    """``max|expected - actual| / max|expected|`` of two arrays/tensors."""
    expected = torch.as_tensor(expected, dtype=torch.float64)
    actual = torch.as_tensor(actual, dtype=torch.float64)
    scale = expected.abs().max().clamp_min(torch.finfo(torch.float32).tiny)
    return ((expected - actual).abs().max() / scale).item()


def max_relative_difference(expected, actual):
    """Worst :func:`relative_difference` over matching output maps."""
    return max(relative_difference(e, a) for e, a in zip(expected, actual))


def output_differences(variants, x):
    """Max relative difference of every variant's outputs from the first
    variant's (the official network) on input ``x``."""
    with torch.inference_mode():
        outputs = {name: model(x) for name, model in variants.items()}
    baseline = outputs[next(iter(variants))]
    return {name: max_relative_difference(baseline, out)
            for name, out in outputs.items()}
