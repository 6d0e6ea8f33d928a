"""Building blocks of EfficientViT: residual branches, FFN, patch merging."""
from mmcv.cnn.bricks import DropPath
from torch import nn

from .attention import LocalWindowAttention
from .conv_bn import ConvBN


def make_divisible(value, divisor=8):
    """Round ``value`` to the nearest multiple of ``divisor`` (at least one)."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class Residual(nn.Module):
    """``x + drop_path(m(x))``.

    Args:
        m (nn.Module): The residual branch.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
    """

    def __init__(self, m, drop_path_rate=0.):
        super().__init__()
        self.m = m
        self.drop_path = (DropPath(drop_path_rate)
                          if drop_path_rate > 0 else nn.Identity())

    def forward(self, x):
        return x + self.drop_path(self.m(x))


class FFN(nn.Module):
    """Pointwise feed-forward: 1x1 ConvBN (c -> 2c), ReLU, 1x1 ConvBN (2c -> c).

    Args:
        channels (int): Input and output channels.
        deploy (bool): Build ConvBN layers fused. Defaults to False.
    """

    def __init__(self, channels, deploy=False):
        super().__init__()
        self.pw1 = ConvBN(channels, 2 * channels, deploy=deploy)
        self.act = nn.ReLU(inplace=True)
        self.pw2 = ConvBN(2 * channels, channels, bn_weight_init=0.,
                          deploy=deploy)

    def forward(self, x):
        return self.pw2(self.act(self.pw1(x)))


def depthwise_residual(channels, bn_weight_init=1., drop_path_rate=0.,
                       deploy=False):
    """Residual 3x3 depthwise ConvBN (the token interaction layer)."""
    return Residual(
        ConvBN(channels, channels, 3, padding=1, groups=channels,
               bn_weight_init=bn_weight_init, deploy=deploy), drop_path_rate)


class SqueezeExcite(nn.Module):
    """Channel gate: mean pool, 1x1 conv, ReLU, 1x1 conv, sigmoid.

    Args:
        channels (int): Input channels.
        ratio (float): Reduction ratio; hidden width rounds to a multiple
            of 8. Defaults to 0.25.
    """

    def __init__(self, channels, ratio=0.25):
        super().__init__()
        hidden = make_divisible(channels * ratio)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        gate = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


class PatchMerging(nn.Module):
    """Stride-2 inverted residual between stages.

    1x1 ConvBN (c -> 4c), ReLU, 3x3 stride-2 depthwise ConvBN, ReLU,
    squeeze-excite, 1x1 ConvBN (4c -> out).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        deploy (bool): Build ConvBN layers fused. Defaults to False.
    """

    def __init__(self, in_channels, out_channels, deploy=False):
        super().__init__()
        hidden = 4 * in_channels
        self.conv1 = ConvBN(in_channels, hidden, deploy=deploy)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = ConvBN(hidden, hidden, 3, stride=2, padding=1,
                            groups=hidden, deploy=deploy)
        self.se = SqueezeExcite(hidden)
        self.conv3 = ConvBN(hidden, out_channels, deploy=deploy)

    def forward(self, x):
        x = self.act(self.conv2(self.act(self.conv1(x))))
        return self.conv3(self.se(x))


class EfficientViTBlock(nn.Module):
    """Sandwich block: DW, FFN, window attention, DW, FFN (all residual).

    Args:
        dim (int): Channels.
        key_dim (int): Channels of q and k per head.
        num_heads (int): Attention heads.
        window_size (int): Attention window side.
        q_kernels (Sequence[int]): Depthwise kernel on q, one per head.
        drop_path_rate (float): Stochastic depth of every branch.
            Defaults to 0.
        deploy (bool): Build ConvBN layers fused. Defaults to False.
    """

    def __init__(self, dim, key_dim, num_heads, window_size, q_kernels,
                 drop_path_rate=0., deploy=False):
        super().__init__()
        self.dw0 = depthwise_residual(dim, 0., drop_path_rate, deploy)
        self.ffn0 = Residual(FFN(dim, deploy), drop_path_rate)
        self.mixer = Residual(
            LocalWindowAttention(dim, key_dim, num_heads, window_size,
                                 q_kernels, deploy), drop_path_rate)
        self.dw1 = depthwise_residual(dim, 0., drop_path_rate, deploy)
        self.ffn1 = Residual(FFN(dim, deploy), drop_path_rate)

    def forward(self, x):
        return self.ffn1(self.dw1(self.mixer(self.ffn0(self.dw0(x)))))


class Downsample(nn.Sequential):
    """Transition between stages: DW+FFN at the old width, patch merging,
    DW+FFN at the new width.

    Args:
        in_channels (int): Channels of the previous stage.
        out_channels (int): Channels of this stage.
        deploy (bool): Build ConvBN layers fused. Defaults to False.
    """

    def __init__(self, in_channels, out_channels, deploy=False):
        super().__init__()
        self.res1 = nn.Sequential(
            depthwise_residual(in_channels, deploy=deploy),
            Residual(FFN(in_channels, deploy)))
        self.patchmerge = PatchMerging(in_channels, out_channels, deploy)
        self.res2 = nn.Sequential(
            depthwise_residual(out_channels, deploy=deploy),
            Residual(FFN(out_channels, deploy)))
