"""Shared fixtures: small synthetic datasets made once per test session."""
import pytest
import torch

from mmevit.datasets import make_coco_toy


@pytest.fixture(scope='session')
def toy_coco(tmp_path_factory):
    """A tiny COCO-format shapes set (8 train, 4 val images)."""
    root = tmp_path_factory.mktemp('toy_coco')
    return make_coco_toy(str(root), num_train=8, num_val=4, min_size=96,
                         max_size=160, show_progress=False)


def randomize_weights(module, seed=0):
    """Fill every float parameter and buffer of ``module`` with seeded random
    values (BN running variances positive) so that weight conversions and
    comparisons are checked on non-trivial values. Returns its state dict."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.randn(tensor.shape, generator=gen) * 0.2
                if name.endswith('running_var'):
                    values = values.abs() + 0.5
                tensor.copy_(values)
    return module.state_dict()


# The released m0 checkpoint uses q kernels 5, 5, 5, 5 (the official
# classification code); the official downstream file lists 7, 5, 3, 3.
_RELEASED_KERNELS = {'m0': [5, 5, 5, 5]}


def official_backbone(arch, window_size=(7, 7, 7), seed=None, **kwargs):
    """The official downstream backbone (tests/official transcription) for
    ``arch``, with weights randomised when ``seed`` is given."""
    from official import efficientvit as official
    cfg = dict(getattr(official, f'EfficientViT_{arch}'))
    cfg['window_size'] = list(window_size)
    cfg['kernels'] = _RELEASED_KERNELS.get(arch, cfg['kernels'])
    cfg.update(kwargs)
    model = official.EfficientViT(**cfg)
    if seed is not None:
        randomize_weights(model, seed)
    return model
