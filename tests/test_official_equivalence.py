"""mmevit computes what the official EfficientViT downstream code computes.

The expected values come from the line-by-line transcriptions of the
official source in tests/official (see its README), fed with the same
random weights in the official key layout; mmevit only sees them through
its own checkpoint conversion and loading.
"""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmevit.models import EfficientViT, EfficientViTFPN
from mmevit.tools.benchmark.official_baseline import check_official_runs
from tests.helpers import official_backbone, randomize_weights
from tests.official.efficientvit import replace_batchnorm
from tests.official.efficientvit_fpn import EfficientViTFPN as OfficialFPN

ARCHS = sorted(EfficientViT.arch_zoo)
# Every stage map is larger than one window in some direction (strides 16,
# 32, 64: 9x30, 5x15, 3x8): the official code pads only then, and fails on
# maps smaller than a window unless they are exactly window-sized.
ODD_SIZE = (130, 470)


def save_official(tmp_path, state, name='official.pth'):
    path = tmp_path / name
    torch.save({'model': state}, path)
    return str(path)


def mmevit_from_official(tmp_path, arch, reference, **kwargs):
    path = save_official(tmp_path, reference.state_dict())
    model = EfficientViT(arch=arch, init_cfg=dict(type='Pretrained',
                                                  checkpoint=path), **kwargs)
    model.init_weights()  # strict
    return model


def assert_outputs_close(ours, theirs, tol=1e-4):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize('arch', ARCHS)
def test_backbone_eval_equals_official(arch, tmp_path):
    reference = official_backbone(arch, seed=0)
    model = mmevit_from_official(tmp_path, arch, reference).eval()
    reference.eval()  # the official attention caches its biases here
    x = torch.randn(1, 3, *ODD_SIZE)
    with torch.no_grad():
        assert_outputs_close(model(x), reference(x))


def test_backbone_window_sized_map_equals_official(tmp_path):
    """Maps exactly one window large (official: no padding branch)."""
    reference = official_backbone('m0', seed=1)
    model = mmevit_from_official(tmp_path, 'm0', reference).eval()
    reference.eval()
    x = torch.randn(1, 3, 400, 416)  # stage maps 25x26, 13x13, 7x7
    with torch.no_grad():
        assert_outputs_close(model(x), reference(x))


def test_backbone_training_forward_and_gradients_equal_official(tmp_path):
    """The official recipe trains with every backbone BN in eval mode:
    mmevit's ``norm_eval=True`` gives the same outputs and input gradients."""
    reference = official_backbone('m4', seed=2).double()
    model = mmevit_from_official(tmp_path, 'm4', reference,
                                 norm_eval=True).double()
    reference.train()
    model.train()
    x = torch.randn(2, 3, *ODD_SIZE, dtype=torch.float64)
    grads = []
    for net in (model, reference):
        inp = x.clone().requires_grad_()
        outs = net(inp)
        sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)
             ).sum() for o in outs).backward()
        grads.append((outs, inp.grad))
    assert_outputs_close(grads[0][0], grads[1][0], tol=1e-9)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-8,
                               atol=1e-10)


@pytest.mark.parametrize('arch', ['m0', 'm5'])
def test_deploy_mode_equals_official_with_bn_folded(arch, tmp_path):
    reference = official_backbone(arch, seed=3)
    reference.eval()  # the official train() returns None: no chaining
    path = save_official(tmp_path, reference.state_dict())
    replace_batchnorm(reference)
    model = EfficientViT(arch=arch, deploy=True, init_cfg=dict(
        type='Pretrained', checkpoint=path))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, *ODD_SIZE)
    with torch.no_grad():
        assert_outputs_close(model(x), reference(x), tol=1e-3)


@pytest.mark.parametrize('arch', ['m1', 'm4'])
def test_imagenet_checkpoint_bias_resize_equals_official_loader(
        arch, tmp_path):
    """A classification checkpoint (stage-3 bias tables over 4x4 offsets,
    classifier head, bias index buffers) loads into a 7x7 window exactly as
    the official downstream ``init_weights`` resizes it."""
    classifier = official_backbone(arch, window_size=(7, 7, 4), seed=4)
    state = dict(classifier.state_dict())
    dim = classifier.blocks3[-1].ffn1.m.pw2.c.weight.shape[0]
    state.update({'head.bn.weight': torch.ones(dim),
                  'head.l.weight': torch.randn(1000, dim),
                  'head.l.bias': torch.zeros(1000)})
    assert state[
        'blocks3.3.mixer.m.attn.attention_biases'].shape[1] == 16
    path = save_official(tmp_path, state)

    reference = official_backbone(arch)
    reference.init_weights(pretrained=path)
    reference.eval()
    model = EfficientViT(arch=arch, init_cfg=dict(type='Pretrained',
                                                  checkpoint=path))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, *ODD_SIZE)
    with torch.no_grad():
        assert_outputs_close(model(x), reference(x))


NECK_SETTINGS = [
    # (num_extra_trans_convs, num_outs, add_extra_convs, relu_before)
    (0, 3, False, False),
    (0, 5, 'on_input', True),
    (1, 5, 'on_input', False),  # RetinaNet
    (1, 5, False, False),
    (2, 5, False, False),  # Mask R-CNN
    (2, 6, 'on_output', False),
    (2, 7, 'on_lateral', True),
]


@pytest.mark.parametrize('trans, num_outs, extra, relu', NECK_SETTINGS)
def test_neck_equals_official(trans, num_outs, extra, relu):
    dims, size = [64, 128, 192], (37, 53)
    reference = OfficialFPN(dims, 16, num_outs, add_extra_convs=extra,
                            relu_before_extra_convs=relu,
                            num_extra_trans_convs=trans)
    randomize_weights(reference, seed=5)
    neck = EfficientViTFPN(dims, 16, num_outs, num_extra_trans_convs=trans,
                           add_extra_convs=extra,
                           relu_before_extra_convs=relu)
    neck.load_state_dict(reference.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(2, c, (size[0] + 2**i - 1) // 2**i,
                          (size[1] + 2**i - 1) // 2**i, generator=gen)
              for i, c in enumerate(dims)]
    with torch.no_grad():
        assert_outputs_close(neck(inputs), reference(inputs), tol=1e-5)


def test_semantic_fpn_neck_is_the_official_neck_without_its_last_level():
    """Semantic FPN uses 4 levels; the official neck always builds the
    stride-64 level (num_outs=5): mmevit's num_outs=4 gives the official
    first four outputs and lacks exactly that level's conv."""
    dims = [128, 256, 384]
    reference = OfficialFPN(dims, 16, 5, num_extra_trans_convs=2)
    state = randomize_weights(reference, seed=6)
    neck = EfficientViTFPN(dims, 16, 4, num_extra_trans_convs=2)
    own = neck.state_dict().keys()
    assert {k for k in state if k not in own} == {
        'fpn_convs.2.conv.weight', 'fpn_convs.2.conv.bias'}
    neck.load_state_dict({k: v for k, v in state.items() if k in own})
    inputs = [torch.randn(1, c, 9 // 2**i + 1, 13 // 2**i + 1)
              for i, c in enumerate(dims)]
    with torch.no_grad():
        assert_outputs_close(neck(inputs), reference(inputs)[:4], tol=1e-5)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(batch=st.integers(1, 2), short=st.integers(17, 160),
       long=st.integers(450, 540), transpose=st.booleans(),
       windows=st.lists(st.sampled_from([5, 7]), min_size=3, max_size=3),
       out_indices=st.lists(st.integers(0, 2), min_size=1, max_size=3,
                            unique=True).map(sorted),
       frozen_stages=st.integers(-1, 3), training=st.booleans())
def test_backbone_equals_official_over_drawn_settings(
        tmp_path_factory, batch, short, long, transpose, windows, out_indices,
        frozen_stages, training):
    """Drawn image sizes (one side long enough for the official padding
    rule), batch, window sizes, out_indices, frozen_stages and train
    (norm_eval, the official recipe) or eval mode: mmevit's outputs are the
    official ones at out_indices, and the official frozen patch embedding
    (its frozen_stages >= 0) is frozen in mmevit too."""
    size = (long, short) if transpose else (short, long)
    check_official_runs(*size, window=max(windows))
    official_frozen = min(frozen_stages, 0)
    reference = official_backbone('m0', window_size=windows, seed=7,
                                  frozen_stages=official_frozen)
    model = mmevit_from_official(
        tmp_path_factory.mktemp('official'), 'm0', reference,
        window_sizes=windows, out_indices=out_indices,
        frozen_stages=frozen_stages, norm_eval=True)
    model.train(training)
    reference.train(training)
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(
        short))
    with torch.no_grad():
        theirs = reference(x)
        assert_outputs_close(model(x), [theirs[i] for i in out_indices])
    assert {p.requires_grad for p in model.patch_embed.parameters()} == {
        p.requires_grad for p in reference.patch_embed.parameters()}


@settings(max_examples=8, deadline=None, derandomize=True)
@given(setting=st.sampled_from(NECK_SETTINGS), batch=st.integers(1, 2),
       height=st.integers(1, 90), width=st.integers(1, 90),
       out_channels=st.sampled_from([8, 16]))
def test_neck_equals_official_over_drawn_settings(setting, batch, height,
                                                  width, out_channels):
    """The neck against the official FPN over drawn input sizes (odd, tiny),
    batch, widths and every extra-level setting."""
    trans, num_outs, extra, relu = setting
    dims = [64, 128, 192]
    reference = OfficialFPN(dims, out_channels, num_outs,
                            add_extra_convs=extra, relu_before_extra_convs=relu,
                            num_extra_trans_convs=trans)
    randomize_weights(reference, seed=height)
    neck = EfficientViTFPN(dims, out_channels, num_outs,
                           num_extra_trans_convs=trans, add_extra_convs=extra,
                           relu_before_extra_convs=relu)
    neck.load_state_dict(reference.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(width)
    inputs = [torch.randn(batch, c, (height + 2**i - 1) // 2**i,
                          (width + 2**i - 1) // 2**i, generator=gen)
              for i, c in enumerate(dims)]
    with torch.no_grad():
        assert_outputs_close(neck(inputs), reference(inputs), tol=1e-5)
