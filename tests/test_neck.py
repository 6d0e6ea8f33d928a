"""EfficientViTFPN: output strides, odd sizes, errors, checkpoint names."""
import pytest
import torch
import torch.nn.functional as F

from mmevit.models import EfficientViT, EfficientViTFPN

DIMS = [128, 256, 384]


def backbone_features(h, w, batch=1):
    backbone = EfficientViT(arch='m4').eval()
    with torch.no_grad():
        return backbone(torch.randn(batch, 3, h, w))


@pytest.mark.parametrize('kwargs, strides', [
    (dict(num_outs=5, num_extra_trans_convs=1, add_extra_convs='on_input'),
     [8, 16, 32, 64, 128]),  # RetinaNet
    (dict(num_outs=5, num_extra_trans_convs=2), [4, 8, 16, 32, 64]),  # R-CNN
    (dict(num_outs=4, num_extra_trans_convs=2), [4, 8, 16, 32]),  # Sem. FPN
    (dict(num_outs=3), [16, 32, 64]),
])
def test_output_strides(kwargs, strides):
    neck = EfficientViTFPN(DIMS, 32, **kwargs).eval()
    with torch.no_grad():
        outs = neck(backbone_features(256, 512, batch=2))
    assert [(o.shape[0], o.shape[1]) for o in outs] == [(2, 32)] * len(strides)
    assert [512 // o.shape[3] for o in outs] == strides


def test_odd_sizes_keep_every_level():
    neck = EfficientViTFPN(DIMS, 16, num_outs=5, num_extra_trans_convs=2)
    with torch.no_grad():
        outs = neck.eval()(backbone_features(112, 137))
    # stride-16 map is 7x9; finer levels double it, coarser ones halve it.
    assert [tuple(o.shape[2:]) for o in outs] == [(28, 36), (14, 18), (7, 9),
                                                  (4, 5), (2, 3)]


def test_dropped_levels_build_no_convs():
    neck = EfficientViTFPN(DIMS, 16, num_outs=4, num_extra_trans_convs=2)
    assert len(neck.lateral_convs) == 3 and len(neck.fpn_convs) == 2
    outs = neck.train()(backbone_features(128, 128))
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None for p in neck.parameters())


def test_coarser_levels_are_max_pooled_by_default():
    neck = EfficientViTFPN(DIMS, 16, num_outs=5).eval()
    assert len(neck.fpn_convs) == 3  # no extra convs
    outs = neck(backbone_features(128, 128))
    torch.testing.assert_close(outs[3], F.max_pool2d(outs[2], 1, stride=2))
    torch.testing.assert_close(outs[4], F.max_pool2d(outs[3], 1, stride=2))


def test_official_module_names():
    neck = EfficientViTFPN(DIMS, 256, num_outs=5, num_extra_trans_convs=1,
                           add_extra_convs='on_input')
    keys = set(neck.state_dict())
    assert {'lateral_convs.2.conv.weight', 'fpn_convs.3.conv.weight',
            'extra_trans_convs.0.conv.weight', 'extra_fpn_convs.0.conv.bias'
            } <= keys
    assert neck.fpn_convs[3].conv.in_channels == 384  # 'on_input' source
    assert isinstance(neck.extra_trans_convs[0].conv, torch.nn.ConvTranspose2d)


def test_in_channels_mismatch_names_both():
    neck = EfficientViTFPN([64, 128, 192], 16, num_outs=3)
    with pytest.raises(ValueError) as info:
        neck(backbone_features(64, 64))
    assert str(info.value) == (
        'EfficientViTFPN got inputs with channels [128, 256, 384], but '
        'in_channels=[64, 128, 192]; set neck.in_channels to the backbone '
        'arch embed_dims (of its out_indices)')


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_outs=2, num_extra_trans_convs=2), 'num_outs=2'),
    (dict(num_outs=5, add_extra_convs='on_top'), "'on_top'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EfficientViTFPN(DIMS, 16, **kwargs)
