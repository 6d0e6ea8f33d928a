"""A plain eager EfficientViT that follows the official algorithm step by step.

Written from the paper and DESIGN.md, with the module names of the official
checkpoints (``patch_embed.0.c``, ``blocks2.1.conv1.c`` ...). It is the
ground truth for mmevit's tests (same outputs after weight conversion) and
the baseline of ``tools/analysis_tools/benchmark.py``. It is deliberately unoptimised:
the attention bias is gathered and q scaled after the N x N product on
every call, as in the official code.
"""
import torch
import torch.nn.functional as F
from torch import nn


class Conv2dBN(nn.Sequential):
    """Official ``Conv2d_BN``: children ``c`` (conv) and ``bn``."""

    def __init__(self, a, b, ks=1, stride=1, pad=0, groups=1):
        super().__init__()
        self.c = nn.Conv2d(a, b, ks, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(b)


class Res(nn.Module):

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return x + self.m(x)


class Ffn(nn.Module):

    def __init__(self, c):
        super().__init__()
        self.pw1 = Conv2dBN(c, 2 * c)
        self.act = nn.ReLU()
        self.pw2 = Conv2dBN(2 * c, c)

    def forward(self, x):
        return self.pw2(self.act(self.pw1(x)))


class Se(nn.Module):
    """Squeeze-excite with linear (2-D) weights, as some releases store."""

    def __init__(self, c):
        super().__init__()
        hidden = max(8, int(c * 0.25 + 4) // 8 * 8)
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)

    def forward(self, x):
        s = x.mean((2, 3))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class Merging(nn.Module):

    def __init__(self, c, out):
        super().__init__()
        self.conv1 = Conv2dBN(c, 4 * c)
        self.act = nn.ReLU()
        self.conv2 = Conv2dBN(4 * c, 4 * c, 3, 2, 1, groups=4 * c)
        self.se = Se(4 * c)
        self.conv3 = Conv2dBN(4 * c, out)

    def forward(self, x):
        return self.conv3(self.se(self.act(self.conv2(self.act(
            self.conv1(x))))))


class Cga(nn.Module):
    """Cascaded group attention, official order of operations."""

    def __init__(self, dim, heads, window, kernels, key_dim=16):
        super().__init__()
        self.heads, self.key_dim, self.d = heads, key_dim, dim // heads
        self.qkvs = nn.ModuleList(
            Conv2dBN(dim // heads, 2 * key_dim + self.d) for _ in range(heads))
        self.dws = nn.ModuleList(
            Conv2dBN(key_dim, key_dim, k, 1, k // 2, groups=key_dim)
            for k in kernels[:heads])
        self.proj = nn.Sequential(nn.ReLU(), Conv2dBN(self.d * heads, dim))
        offsets, idxs = {}, []
        points = [(y, x) for y in range(window) for x in range(window)]
        for p in points:
            for q in points:
                off = (abs(p[0] - q[0]), abs(p[1] - q[1]))
                idxs.append(offsets.setdefault(off, len(offsets)))
        self.attention_biases = nn.Parameter(torch.zeros(heads, len(offsets)))
        self.register_buffer('attention_bias_idxs',
                             torch.tensor(idxs).view(len(points), -1))

    def forward(self, x):
        B, C, H, W = x.shape
        bias = self.attention_biases[:, self.attention_bias_idxs]
        chunks = x.chunk(self.heads, 1)
        outs = []
        feat = chunks[0]
        for i in range(self.heads):
            if i > 0:
                feat = feat + chunks[i]
            q, k, v = self.qkvs[i](feat).view(B, -1, H, W).split(
                [self.key_dim, self.key_dim, self.d], 1)
            q = self.dws[i](q)
            q, k, v = q.flatten(2), k.flatten(2), v.flatten(2)
            attn = (q.transpose(-2, -1) @ k) * self.key_dim**-0.5 + bias[i]
            attn = attn.softmax(-1)
            feat = (v @ attn.transpose(-2, -1)).view(B, self.d, H, W)
            outs.append(feat)
        return self.proj(torch.cat(outs, 1))


class WindowAttention(nn.Module):
    """Official window loop with padding applied whatever the map size."""

    def __init__(self, dim, heads, window, kernels):
        super().__init__()
        self.window = window
        self.attn = Cga(dim, heads, window, kernels)

    def forward(self, x):
        B, C, H, W = x.shape
        w = self.window
        x = x.permute(0, 2, 3, 1)
        pb, pr = (w - H % w) % w, (w - W % w) % w
        x = F.pad(x, (0, 0, 0, pr, 0, pb))
        pH, pW = H + pb, W + pr
        nH, nW = pH // w, pW // w
        x = x.view(B, nH, w, nW, w, C).transpose(2, 3).reshape(
            B * nH * nW, w, w, C).permute(0, 3, 1, 2)
        x = self.attn(x)
        x = x.permute(0, 2, 3, 1).view(B, nH, nW, w, w, C).transpose(
            2, 3).reshape(B, pH, pW, C)
        return x[:, :H, :W].permute(0, 3, 1, 2)


class Block(nn.Module):

    def __init__(self, dim, heads, window, kernels):
        super().__init__()
        self.dw0 = Res(Conv2dBN(dim, dim, 3, 1, 1, groups=dim))
        self.ffn0 = Res(Ffn(dim))
        self.mixer = Res(WindowAttention(dim, heads, window, kernels))
        self.dw1 = Res(Conv2dBN(dim, dim, 3, 1, 1, groups=dim))
        self.ffn1 = Res(Ffn(dim))

    def forward(self, x):
        return self.ffn1(self.dw1(self.mixer(self.ffn0(self.dw0(x)))))


class OfficialEfficientViT(nn.Module):
    """Reference EfficientViT returning the three stage outputs.

    Args:
        embed_dims, depths, num_heads, q_kernels: the arch table's entries.
        window_sizes (Sequence[int]): Window per stage. The classification
            checkpoints correspond to (7, 7, 4) at 224 input.
        num_classes (int): Adds the ``head`` (BN + Linear) of the
            classification checkpoints when > 0. Defaults to 0.
    """

    def __init__(self, embed_dims, depths, num_heads, q_kernels,
                 window_sizes=(7, 7, 7), num_classes=0):
        super().__init__()
        e = embed_dims
        self.patch_embed = nn.Sequential(
            Conv2dBN(3, e[0] // 8, 3, 2, 1), nn.ReLU(),
            Conv2dBN(e[0] // 8, e[0] // 4, 3, 2, 1), nn.ReLU(),
            Conv2dBN(e[0] // 4, e[0] // 2, 3, 2, 1), nn.ReLU(),
            Conv2dBN(e[0] // 2, e[0], 3, 2, 1))
        stages = []
        for i in range(3):
            layers = []
            if i > 0:
                p = e[i - 1]
                layers += [
                    nn.Sequential(Res(Conv2dBN(p, p, 3, 1, 1, groups=p)),
                                  Res(Ffn(p))),
                    Merging(p, e[i]),
                    nn.Sequential(Res(Conv2dBN(e[i], e[i], 3, 1, 1,
                                               groups=e[i])), Res(Ffn(e[i])))
                ]
            layers += [Block(e[i], num_heads[i], window_sizes[i], q_kernels)
                       for _ in range(depths[i])]
            stages.append(nn.Sequential(*layers))
        self.blocks1, self.blocks2, self.blocks3 = stages
        if num_classes:
            self.head = nn.Sequential()
            self.head.add_module('bn', nn.BatchNorm1d(e[2]))
            self.head.add_module('l', nn.Linear(e[2], num_classes))

    def forward(self, x):
        x = self.patch_embed(x)
        outs = []
        for stage in (self.blocks1, self.blocks2, self.blocks3):
            x = stage(x)
            outs.append(x)
        return tuple(outs)


def official_state_dict(model, seed=0):
    """Randomise every weight and BN statistic of ``model`` (a reference or
    mmevit model) and return its state dict, so converted checkpoints are
    checked on non-trivial values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.randn(tensor.shape, generator=gen) * 0.2
                if name.endswith('running_var'):
                    values = values.abs() + 0.5
                tensor.copy_(values)
    return model.state_dict()
