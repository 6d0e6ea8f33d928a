"""Cascaded group attention inside local windows (EfficientViT, CVPR 2023)."""
import torch
import torch.nn.functional as F
from torch import nn

from .conv_bn import ConvBN


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
    """Split a padded map into windows: B,C,H,W -> B*nH*nW,C,ws,ws."""
    B, C, H, W = x.shape
    nh, nw = H // window_size, W // window_size
    x = x.view(B, C, nh, window_size, nw, window_size)
    x = x.permute(0, 2, 4, 1, 3, 5)  # B,nH,nW,C,ws,ws
    return x.reshape(B * nh * nw, C, window_size, window_size)


def window_reverse(windows, batch_size, height, width):
    """Inverse of :func:`window_partition`: B*nH*nW,C,ws,ws -> B,C,H,W."""
    window_size = windows.shape[-1]
    C = windows.shape[1]
    nh, nw = height // window_size, width // window_size
    x = windows.view(batch_size, nh, nw, C, window_size, window_size)
    x = x.permute(0, 3, 1, 4, 2, 5)  # B,C,nH,ws,nW,ws
    return x.reshape(batch_size, C, height, width)


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
            nn.ReLU(),
            ConvBN(self.value_dim * num_heads, dim, bn_weight_init=0.,
                   deploy=deploy))
        self.attention_biases = nn.Parameter(
            torch.zeros(num_heads, window_size * window_size))
        self.register_buffer('attention_bias_idxs',
                             relative_offset_index(window_size),
                             persistent=False)
        self._bias_cache = None

    def attention_bias(self):
        """Bias of shape (heads, N, N); cached in eval mode.

        The cache is keyed by device, dtype and the parameter's version
        counter, so moving the module or loading new weights refreshes it.
        """
        if self.training or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return self.attention_biases[:, self.attention_bias_idxs]
        biases = self.attention_biases
        key = (biases.device, biases.dtype, biases._version)
        if self._bias_cache is None or self._bias_cache[0] != key:
            with torch.no_grad():
                gathered = biases[:, self.attention_bias_idxs]
            self._bias_cache = (key, gathered)
        return self._bias_cache[1]

    def train(self, mode=True):
        self._bias_cache = None
        return super().train(mode)

    def forward(self, x):
        """x: (B*windows, C, ws, ws) -> same shape."""
        B, _, H, W = x.shape
        bias = self.attention_bias()
        groups = x.chunk(self.num_heads, dim=1)
        outs = []
        feat = groups[0]
        for i, (qkv, dw) in enumerate(zip(self.qkvs, self.dws)):
            if i > 0:
                feat = outs[-1] + groups[i]
            q, k, v = qkv(feat).split(
                [self.key_dim, self.key_dim, self.value_dim], dim=1)
            q = dw(q)
            q = q.flatten(2).transpose(1, 2) * self.scale  # B,N,kd
            attn = torch.baddbmm(bias[i], q, k.flatten(2))  # B,N,N
            attn = attn.softmax(dim=-1)
            out = torch.bmm(v.flatten(2), attn.transpose(1, 2))  # B,vd,N
            outs.append(out.view(B, self.value_dim, H, W))
        return self.proj(torch.cat(outs, dim=1))


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
        if pad_b or pad_r:
            x = F.pad(x, (0, pad_r, 0, pad_b))
        windows = self.attn(window_partition(x, ws))
        x = window_reverse(windows, B, H + pad_b, W + pad_r)
        if pad_b or pad_r:
            x = x[:, :, :H, :W].contiguous()
        return x
