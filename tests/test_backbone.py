"""EfficientViT backbone: shapes, options, arch validation, deploy mode."""
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from mmevit.errors import ConfigError
from mmevit.models import EfficientViT
from mmevit.models.layers import ConvBN
from tests.helpers import randomize_weights

ARCHS = sorted(EfficientViT.arch_zoo)


def strides_shapes(h, w):
    """Expected (H, W) of the stride 16, 32, 64 outputs."""
    shapes = []
    for _ in range(4):  # patch embedding: four stride-2 3x3 convs
        h, w = (h + 1) // 2, (w + 1) // 2
    for _ in range(3):
        shapes.append((h, w))
        h, w = (h + 1) // 2, (w + 1) // 2
    return shapes


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('size', [(224, 224), (112, 137), (200, 328)])
def test_output_shapes_every_arch(arch, size):
    model = EfficientViT(arch=arch).eval()
    dims = EfficientViT.arch_zoo[arch]['embed_dims']
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert len(outs) == 3
    for out, dim, hw in zip(outs, dims, strides_shapes(*size)):
        assert out.shape == (2, dim, *hw)


@pytest.mark.parametrize('size', [(1, 1), (17, 33), (800, 1333)])
def test_extreme_sizes(size):
    model = EfficientViT(arch='m0').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert [o.shape[2:] for o in outs] == strides_shapes(*size)
    assert all(torch.isfinite(o).all() for o in outs)


def test_out_indices_subset():
    model = EfficientViT(arch='m1', out_indices=(2, 0)).eval()
    outs = model(torch.randn(1, 3, 96, 96))
    assert [o.shape[1] for o in outs] == [128, 192]


def test_out_indices_as_one_int():
    outs = EfficientViT(arch='m1', out_indices=1).eval()(torch.randn(1, 3, 96, 96))
    assert [o.shape[1] for o in outs] == [144]


def test_frozen_stages_stay_frozen_in_train_mode():
    model = EfficientViT(arch='m0', frozen_stages=2)
    model.train()
    for module in (model.patch_embed, model.stages[0], model.stages[1]):
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    assert model.stages[2].training
    assert all(p.requires_grad for p in model.stages[2].parameters())
    frozen = {n: p.clone() for n, p in model.stages[0].state_dict().items()}
    model(torch.randn(2, 3, 64, 64))  # BN stats of frozen parts do not move
    for name, value in model.stages[0].state_dict().items():
        assert torch.equal(value, frozen[name]), name


def test_frozen_stages_patch_embed_only():
    model = EfficientViT(arch='m0', frozen_stages=0).train()
    assert all(not p.requires_grad for p in model.patch_embed.parameters())
    assert all(p.requires_grad for p in model.stages.parameters())


def test_norm_eval_keeps_bn_in_eval():
    model = EfficientViT(arch='m0', norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)
    assert EfficientViT(arch='m0').train().stages[0].training


def test_with_cp_gives_same_gradients():
    """Gradient checkpointing changes no gradient of any parameter. Random
    weights: a fresh model's zero-initialised projection BN gives zero
    gradients to everything before it (and a plain sum of BN outputs in
    train mode is constant), so the loss weighs the outputs randomly."""
    plain = EfficientViT(arch='m0')
    randomize_weights(plain)
    ckpt = EfficientViT(arch='m0', with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 64, 96, generator=gen)
    weights = None
    grads = []
    for model in (plain, ckpt):
        model.train()
        outs = model(x)
        if weights is None:
            weights = [torch.randn(o.shape, generator=gen) for o in outs]
        sum((o * w).sum() for o, w in zip(outs, weights)).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    for key, grad in grads[0].items():
        assert grad is not None and grad.abs().sum() > 0, key
        assert grads[1][key] is not None, key
        torch.testing.assert_close(grads[1][key], grad, msg=key)


def test_with_cp_keeps_few_activations_for_backward():
    """with_cp trades compute for memory: the blocks keep (almost) none of
    their activations for backward."""
    def saved_for_backward(with_cp):
        torch.manual_seed(0)
        model = EfficientViT(arch='m0', with_cp=with_cp).train()
        x = torch.randn(2, 3, 64, 64)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
                lambda t: saved.append(t.numel()) or t, lambda t: t):
            model(x)
        return sum(saved)

    assert saved_for_backward(True) < saved_for_backward(False) / 3


def test_drop_path_random_in_train_identity_in_eval():
    model = EfficientViT(arch='m0', drop_path_rate=0.5)
    randomize_weights(model)  # zero-initialised branches would drop nothing
    x = torch.randn(4, 3, 64, 64)
    model.train()
    torch.manual_seed(1)
    a = model(x)[2]
    torch.manual_seed(2)
    b = model(x)[2]
    assert not torch.allclose(a, b)
    without = EfficientViT(arch='m0', drop_path_rate=0.)
    without.load_state_dict(model.state_dict())
    model.eval()
    without.eval()
    with torch.no_grad():
        for ours, plain in zip(model(x), without(x)):
            torch.testing.assert_close(ours, plain, rtol=0, atol=0)


def test_window_sizes_set_bias_tables_and_keep_shapes():
    model = EfficientViT(arch='m4', window_sizes=[7, 7, 14]).eval()
    attn = model.stages[2].blocks[0].mixer.m.attn
    assert attn.attention_biases.shape == (4, 14 * 14)
    outs = model(torch.randn(1, 3, 320, 320))
    assert [o.shape[2:] for o in outs] == strides_shapes(320, 320)


def test_custom_arch_dict():
    arch = dict(embed_dims=[32, 64, 96], depths=[1, 1, 1],
                num_heads=[2, 2, 3], q_kernels=[3, 3, 3])
    model = EfficientViT(arch=arch).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 64, 96]


@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='m9'), r"Unknown arch 'm9'.*m0.*m5"),
    (dict(arch=5), 'arch must be a str or dict, got 5'),
    (dict(arch=dict(embed_dims=[64, 128, 192], depths=[1, 2, 3],
                    num_heads=[4, 4, 4])), r'missing \[.q_kernels.\]'),
    (dict(arch=dict(embed_dims=[64, 128, 192], depths=[1, 2, 3],
                    num_heads=[4, 4, 4], q_kernels=[5] * 4, key_dim=16)),
     r'unexpected \[.key_dim.\]'),
    (dict(arch=dict(embed_dims=[64, 130, 192], depths=[1, 2, 3],
                    num_heads=[4, 4, 4], q_kernels=[5] * 4)), 'divisible'),
    (dict(arch=dict(embed_dims=[64, 128], depths=[1, 2],
                    num_heads=[4, 4], q_kernels=[5] * 4)), '3 entries'),
    (dict(out_indices=(0, 3)), r'out_indices=\[0, 3\]'),
    (dict(frozen_stages=4), 'frozen_stages=4'),
    (dict(window_sizes=(7, 0, 7)), r'window_sizes=\[7, 0, 7\]'),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        EfficientViT(**kwargs)


def rel_diff(a, b):
    return ((a - b).abs().max() / a.abs().max()).item()


@pytest.mark.parametrize('arch', ARCHS)
def test_switch_to_deploy_same_outputs_no_bn(arch):
    model = EfficientViT(arch=arch)
    randomize_weights(model)
    model.eval()
    x = torch.randn(1, 3, 150, 190)
    with torch.no_grad():
        ref = model(x)
        model.switch_to_deploy()
        fused = model(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for a, b in zip(ref, fused):
        assert rel_diff(a, b) <= 1e-4


def test_deploy_model_loads_unfused_weights():
    model = EfficientViT(arch='m0')
    randomize_weights(model)
    model.eval()
    deployed = EfficientViT(arch='m0', deploy=True).eval()
    deployed.load_state_dict(model.state_dict())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    assert all(isinstance(m.bn, nn.Identity) for m in deployed.modules()
               if isinstance(m, ConvBN))
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(model(x), deployed(x)):
            assert rel_diff(a, b) <= 1e-4


def _change(model, keys, way, seed):
    """Give the tensors ``keys`` of an eval-mode ``model`` new values the
    way a user's loop or mmengine does (``way``)."""
    gen = torch.Generator().manual_seed(seed)
    tensors = dict(model.named_parameters(), **dict(model.named_buffers()))
    new = {k: randomize_like(k, tensors[k], gen) for k in keys}
    if way == 'load_state_dict':
        model.load_state_dict({**model.state_dict(), **new})
    elif way == 'optimizer_step':
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        sum(out.square().mean() for out in model(torch.randn(
            1, 3, 64, 64, generator=gen))).backward()
        optimizer.step()
    else:  # '.data' writes, as weight averaging in a user's loop does
        with torch.no_grad():
            for k, value in new.items():
                tensors[k].data.copy_(value)
        if way == 'data_copy_then_eval':
            model.eval()
        elif way == 'data_copy_then_double':
            model.double()


def randomize_like(name, tensor, gen):
    values = torch.randn(tensor.shape, generator=gen) * 0.3
    return values.abs() + 0.5 if name.endswith('running_var') else values


WEIGHT_CHANGES = ('data_copy', 'data_copy_then_eval', 'data_copy_then_double',
                  'load_state_dict', 'optimizer_step')
M0_FLOAT_KEYS = sorted(k for k, v in EfficientViT(arch='m0').state_dict().items()
                       if v.dtype.is_floating_point)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(keys=st.lists(st.sampled_from(M0_FLOAT_KEYS), min_size=1, max_size=4,
                     unique=True),
       bias_too=st.booleans(), way=st.sampled_from(WEIGHT_CHANGES))
@example(keys=['patch_embed.conv1.bn.bias'], bias_too=False, way='data_copy')
@example(keys=['stages.0.blocks.0.mixer.m.attn.attention_biases'],
         bias_too=False, way='data_copy')
def test_eval_outputs_follow_every_weight_change(keys, bias_too, way):
    """An eval-mode model whose weights change in any way (``.data`` copies
    of BN statistics, attention biases or conv weights, with or without a
    later ``eval()``, ``load_state_dict``, an optimizer step, a cast) gives
    what a fresh model with the same weights gives. (A cache keyed on
    ``Tensor._version`` once kept the old outputs after ``.data.copy_``.)"""
    if bias_too:
        keys = sorted(set(keys) | {'stages.2.blocks.0.mixer.m.attn.'
                                   'attention_biases'})
    model = EfficientViT(arch='m0')
    randomize_weights(model, seed=1)
    model.eval()
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x)
    _change(model, keys, way, seed=len(keys))
    dtype = next(model.parameters()).dtype
    fresh = EfficientViT(arch='m0').to(dtype)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    with torch.no_grad():
        after, expected = model(x.to(dtype)), fresh(x.to(dtype))
    assert any(not torch.allclose(a.to(b), b) for a, b in zip(after, before))
    for a, b in zip(after, expected):
        torch.testing.assert_close(a, b)
