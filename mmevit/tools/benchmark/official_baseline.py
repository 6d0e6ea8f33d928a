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
import sys

import torch

from mmevit.errors import ConfigError
from mmevit.models import EfficientViT
from mmevit.tools.benchmark.measure import measure
from mmevit.tools.benchmark.models import check_arch
from mmevit.tools.benchmark.subjects import Subject

#: Variants timed by ``--compare-official``; the first is the baseline.
VARIANTS = ('official', 'official, BN folded', 'mmevit', 'mmevit deploy')


#: The transcription's folder, in the repository checkout beside the package.
OFFICIAL_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__))))), 'tests', 'official')


def load_official_code(folder=OFFICIAL_DIR):
    """The transcribed official backbone module (``tests/official/efficientvit.py``
    of the repository; the installed wheel does not carry it), imported from
    its folder as the package ``mmevit_official``.

    Raises:
        ConfigError: ``folder`` has no transcription (mmevit not installed
            from a checkout of its repository).
    """
    init = osp.join(folder, '__init__.py')
    if not osp.isfile(osp.join(folder, 'efficientvit.py')):
        raise ConfigError(
            f'the official code is not in {folder}; comparing with it needs '
            'mmevit installed from its repository (pip install -e .)')
    if 'mmevit_official' not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            'mmevit_official', init, submodule_search_locations=[folder])
        package = importlib.util.module_from_spec(spec)
        sys.modules['mmevit_official'] = package
        spec.loader.exec_module(package)
    return importlib.import_module('mmevit_official.efficientvit')


def randomize_weights(module, seed=0):
    """Fill every float parameter and buffer of ``module`` with seeded random
    values (normal x 0.2; BN running variances ``|normal x 0.2| + 0.5``), in
    place, so that comparisons and weight conversions are checked on
    non-trivial values (zero-initialised branches and unit BN statistics
    would hide differences). Returns its state dict. The tests use it too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.randn(tensor.shape, generator=gen) * 0.2
                if name.endswith('running_var'):
                    values = values.abs() + 0.5
                tensor.copy_(values)
    return module.state_dict()


def check_official_runs(height, width, window=7):
    """Raise :class:`ConfigError` if the official downstream code cannot run
    at ``height`` x ``width``.

    Its window attention pads only maps larger than the window; a map no
    larger than the window in both directions must be exactly the window
    (7 x 7), or the bias table (built for 7 x 7) does not fit.
    """
    h, w = height, width
    for _ in range(4):  # patch embedding: four stride-2 3x3 convs
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    for stage in range(3):
        if h <= window and w <= window and (h, w) != (window, window):
            raise ConfigError(
                f'the official code cannot run at {height}x{width}: its '
                f'stage-{stage + 1} map is {h}x{w}, smaller than its '
                f'{window}x{window} window and not equal to it; choose a size '
                'whose maps at strides 16, 32 and 64 each exceed 7 in height '
                'or width (e.g. 512x512, 800x1344)')
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1


def build_variants(arch, seed=0):
    """The four :data:`VARIANTS` of one arch, in eval mode, same weights.

    ``official`` is built from the official ``EfficientViT_<arch>`` settings
    with the q kernels of the released checkpoints (for M0 5, 5, 5, 5 where
    the downstream file lists 7, 5, 3, 3), i.e. the network mmevit's
    ``arch`` builds. ``official, BN folded`` is it after the official
    ``replace_batchnorm`` (what the official speed test times);
    ``mmevit deploy`` is :meth:`EfficientViT.switch_to_deploy`.

    Args:
        arch (str): 'm0'..'m5'.
        seed (int): Seed of the random weights. Defaults to 0.

    Returns:
        dict[str, nn.Module]: The models, by variant name.
    """
    official = load_official_code()
    settings = dict(getattr(official, f'EfficientViT_{arch}'),
                    kernels=list(EfficientViT.arch_zoo[arch]['q_kernels']))
    reference = official.EfficientViT(**settings)
    randomize_weights(reference, seed)
    reference.eval()
    model = EfficientViT(arch=arch, window_sizes=settings['window_size'])
    model.load_state_dict(reference.state_dict())  # converted on load
    model.eval()
    folded = copy.deepcopy(reference)
    official.replace_batchnorm(folded)
    folded.eval()  # the official train() returns None: no chaining
    deployed = copy.deepcopy(model)
    deployed.switch_to_deploy()
    return {'official': reference, 'official, BN folded': folded,
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


def compare_official(arch, shape, batch_size=1, device='cpu', warmup=3,
                     repeats=10, seed=0):
    """Time mmevit against the official algorithm with identical weights.

    The four :data:`VARIANTS` run interleaved (:func:`measure`); each row
    gets its speed-up over the eager ``official`` reference and the max
    relative difference of its outputs from the reference's (on a second
    random input).

    Args:
        arch (str): 'm0'..'m5'.
        shape (tuple[int, int]): Input (height, width).
        batch_size (int): Images per call. Defaults to 1.
        device (torch.device | str): Where to run. Defaults to 'cpu'.
        warmup (int): Discarded rounds. Defaults to 3.
        repeats (int): Measured rounds. Defaults to 10.
        seed (int): Seed of the weights and inputs. Defaults to 0.

    Returns:
        list[dict]: One row per variant.
    """
    check_official_runs(*shape)
    models = {name: model.to(device) for name, model in
              build_variants(check_arch(arch), seed=seed).items()}
    subjects = [Subject(f'{arch.upper()} {name}', model)
                for name, model in models.items()]
    rows = measure(subjects, ['backbone'], ['eager-fp32'], [shape],
                   device=device, batch_size=batch_size, warmup=warmup,
                   repeats=repeats, seed=seed, reference=subjects[0].name)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch_size, 3, *shape, generator=gen).to(device)
    diffs = output_differences(models, x)
    for row, variant in zip(rows, VARIANTS):
        row['variant'] = variant
        row['speedup_vs_official'] = row.pop('x_reference')
        row['max_rel_diff_vs_official'] = diffs[variant]
    return rows
