"""Cascaded group attention inside local windows (EfficientViT, CVPR 2023)."""
import torch
import torch.nn.functional as F
from torch import nn

from ...stack import is_compiling
from .conv_bn import ConvBN


def in_graph_capture():
    """True while torch.jit.trace, torch.compile or torch.export records the
    computation (a recorded graph must hold for every input size)."""
    return torch.jit.is_tracing() or is_compiling()


def relative_offset_index(window_size):
    """Index of the bias-table entry for every (query, key) pair in a window.

    Tokens at (y1, x1) and (y2, x2) share the entry ``|y1-y2| * ws + |x1-x2|``,
    so the table of a head has ``ws * ws`` entries laid out as a
    ``ws x ws`` grid over (|dy|, |dx|), the order of the official code.

    Args:
        window_size (int): Side of the square window.

    Returns:
        Tensor: Long tensor of shape (ws*ws, ws*ws).
    """
    coords = torch.arange(window_size)
    ys, xs = torch.meshgrid(coords, coords, indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()  # N
    dy = (ys[:, None] - ys[None, :]).abs()  # N, N
    dx = (xs[:, None] - xs[None, :]).abs()
    return dy * window_size + dx


def window_partition(x, window_size):
    """Split a map into windows: B,C,H,W -> B*nH*nW,C,ws,ws.

    H and W must be multiples of the window. The windows are returned in
    channels-last memory (one copy), the layout the attention reads them in.
    """
    B, C, H, W = x.shape
    nh, nw = H // window_size, W // window_size
    x = x.permute(0, 2, 3, 1)  # B,H,W,C (a view)
    x = x.reshape(B, nh, window_size, nw, window_size, C).transpose(2, 3)
    x = x.reshape(B * nh * nw, window_size, window_size, C)  # the copy
    return x.permute(0, 3, 1, 2)  # B*nH*nW,C,ws,ws


def window_reverse(windows, batch_size, height, width):
    """Inverse of :func:`window_partition`: B*nH*nW,C,ws,ws -> B,C,H,W
    (channels-last memory, one copy)."""
    window_size = windows.shape[-1]
    C = windows.shape[1]
    nh, nw = height // window_size, width // window_size
    x = windows.permute(0, 2, 3, 1)  # B*nH*nW,ws,ws,C
    x = x.reshape(batch_size, nh, nw, window_size, window_size, C)
    x = x.transpose(2, 3).reshape(batch_size, height, width, C)
    return x.permute(0, 3, 1, 2)


class CascadedGroupAttention(nn.Module):
    """Cascaded group attention over the tokens of one window.

    The input channels are split into ``num_heads`` groups. Head ``j`` sees
    group ``j`` plus the output of head ``j-1``, projects it to q, k (``key_dim``
    channels each) and v (``dim // num_heads`` channels), refines q with a
    depthwise conv, and attends with a learned bias per relative offset.

    Args:
        dim (int): Input and output channels.
        key_dim (int): Channels of q and k per head.
        num_heads (int): Number of heads.
        window_size (int): Side of the window the bias table covers.
        q_kernels (Sequence[int]): Depthwise kernel on q, one per head.
        deploy (bool): Build ConvBN layers fused. Defaults to False.
    """

    def __init__(self, dim, key_dim, num_heads, window_size, q_kernels,
                 deploy=False):
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = dim // num_heads
        self.scale = key_dim**-0.5
        self.qkvs = nn.ModuleList(
            ConvBN(dim // num_heads, 2 * key_dim + self.value_dim,
                   deploy=deploy) for _ in range(num_heads))
        self.dws = nn.ModuleList(
            ConvBN(key_dim, key_dim, k, padding=k // 2, groups=key_dim,
                   deploy=deploy) for k in q_kernels[:num_heads])
        self.proj = nn.Sequential(
            nn.ReLU(inplace=True),
            ConvBN(self.value_dim * num_heads, dim, bn_weight_init=0.,
                   deploy=deploy))
        self.attention_biases = nn.Parameter(
            torch.zeros(num_heads, window_size * window_size))
        self.register_buffer('attention_bias_idxs',
                             relative_offset_index(window_size),
                             persistent=False)

    def attention_bias(self):
        """Bias of shape (heads, N, N), gathered from the current table at
        every forward (never cached, so it always follows the weights)."""
        return self.attention_biases[:, self.attention_bias_idxs]

    def forward(self, x):
        """x: (B*windows, C, ws, ws) -> same shape, channels-last memory."""
        B, C, H, W = x.shape
        kd, vd = self.key_dim, self.value_dim
        bias = self.attention_bias()
        tokens = x.permute(0, 2, 3, 1).reshape(B, H * W, C)  # B,N,C
        outs = []
        for i, (qkv, dw) in enumerate(zip(self.qkvs, self.dws)):
            feat = tokens[..., i * vd:(i + 1) * vd]
            if i > 0:
                feat = feat + outs[-1]
            q, k, v = qkv.linear(feat).split([kd, kd, vd], dim=-1)  # B,N,*
            q = q.reshape(B, H, W, kd).permute(0, 3, 1, 2)  # B,kd,H,W
            q = dw(q).permute(0, 2, 3, 1).reshape(B, H * W, kd) * self.scale
            attn = torch.baddbmm(bias[i], q, k.transpose(1, 2))  # B,N,N
            outs.append(torch.bmm(attn.softmax(dim=-1), v))  # B,N,vd
        out = self.proj[1].linear(self.proj[0](torch.cat(outs, dim=-1)))
        return out.view(B, H, W, C).permute(0, 3, 1, 2)


class LocalWindowAttention(nn.Module):
    """Cascaded group attention applied in non-overlapping windows.

    Any map size works: the map is zero-padded on the bottom/right to a
    multiple of the window, attended per window (no mask) and cropped back.

    Args:
        dim (int): Channels.
        key_dim (int): Channels of q and k per head.
        num_heads (int): Number of heads.
        window_size (int): Window side. Defaults to 7.
        q_kernels (Sequence[int]): Depthwise kernel on q, one per head.
        deploy (bool): Build ConvBN layers fused. Defaults to False.
    """

    def __init__(self, dim, key_dim, num_heads, window_size=7,
                 q_kernels=(5, 5, 5, 5), deploy=False):
        super().__init__()
        self.window_size = window_size
        self.attn = CascadedGroupAttention(dim, key_dim, num_heads,
                                           window_size, q_kernels, deploy)

    def forward(self, x):
        B, _, H, W = x.shape
        ws = self.window_size
        pad_b, pad_r = (-H) % ws, (-W) % ws
        # pad the channels-last view (one copy); a captured graph always
        # pads, so that it holds for every input size
        if in_graph_capture() or pad_b or pad_r:
            x = F.pad(x.permute(0, 2, 3, 1),
                      (0, 0, 0, pad_r, 0, pad_b)).permute(0, 3, 1, 2)
        windows = self.attn(window_partition(x, ws))
        x = window_reverse(windows, B, H + pad_b, W + pad_r)
        return x[:, :, :H, :W]
