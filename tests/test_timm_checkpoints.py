"""Checkpoints with exactly timm's EfficientViT-MSRA keys and shapes (the
fixture generated from timm's own model file) load into mmevit strictly."""
import json
import os.path as osp

import pytest
import torch

from mmevit.checkpoint import CheckpointError
from mmevit.models import EfficientViT

FIXTURE = osp.join(osp.dirname(osp.abspath(__file__)), 'fixtures',
                   'timm_efficientvit_msra_shapes.json')
with open(FIXTURE) as f:
    TIMM_SHAPES = json.load(f)['archs']
ARCHS = sorted(EfficientViT.arch_zoo)


def timm_checkpoint(arch, path, seed=0):
    """Save a state dict with timm's keys and shapes for ``arch`` and
    distinct random values (``.pth`` or ``.safetensors``); return it."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in TIMM_SHAPES[f'efficientvit_{arch}'].items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(7)
        else:
            state[key] = torch.rand(shape, generator=gen) + 0.5
    if str(path).endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return state


@pytest.mark.parametrize('arch, suffix', [(arch, '.pth') for arch in ARCHS] +
                         [('m0', '.safetensors')])
def test_timm_checkpoint_loads_every_tensor(arch, suffix, tmp_path):
    path = tmp_path / f'efficientvit_{arch}{suffix}'
    state = timm_checkpoint(arch, path)
    model = EfficientViT(arch=arch, init_cfg=dict(type='Pretrained',
                                                  checkpoint=str(path)))
    model.init_weights()  # strict: raises on any missing/unexpected key
    # mmevit uses timm's names: every backbone tensor of the file arrives
    # under its own name unchanged, except the classifier's 4x4 last-stage
    # bias tables, resized to the 7x7 window.
    loaded = model.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith('head.')
                           and not k.endswith('attention_bias_idxs')}
    heads = EfficientViT.arch_zoo[arch]['num_heads'][2]
    for key, value in loaded.items():
        if key.startswith('stages.2.') and key.endswith('attention_biases'):
            assert state[key].shape == (heads, 16)
            assert value.shape == (heads, 49)
        else:
            assert torch.equal(value, state[key]), key


def test_timm_checkpoint_of_another_arch_names_it(tmp_path):
    path = tmp_path / 'efficientvit_m4.pth'
    timm_checkpoint('m4', path)
    model = EfficientViT(arch='m5', init_cfg=dict(type='Pretrained',
                                                  checkpoint=str(path)))
    with pytest.raises(CheckpointError,
                       match='looks like m4, the config asks for m5'):
        model.init_weights()
