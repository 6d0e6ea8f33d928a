"""Cascaded group attention against a plain per-head reading of the paper."""
import pytest
import torch
import torch.nn.functional as F

from mmevit.models.layers import (
    CascadedGroupAttention,
    LocalWindowAttention,
    window_partition,
    window_reverse,
)
from tests.helpers import randomize_weights


def conv_bn(module, x):
    """Apply a ConvBN in eval mode with functional ops."""
    conv, bn = module.conv, module.bn
    y = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding,
                 groups=conv.groups)
    return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight,
                        bn.bias, False, 0., bn.eps)


def plain_cascaded_group_attention(module, x, window):
    """Eq. (2)-(3) of the paper, one head and one query token at a time."""
    B, C, H, W = x.shape
    heads, kd = module.num_heads, module.key_dim
    splits = x.chunk(heads, dim=1)
    outputs, previous = [], None
    for j in range(heads):
        head_in = splits[j] if previous is None else splits[j] + previous
        qkv = conv_bn(module.qkvs[j], head_in)
        q, k, v = qkv[:, :kd], qkv[:, kd:2 * kd], qkv[:, 2 * kd:]
        q = conv_bn(module.dws[j], q)
        out = torch.zeros_like(v)
        for n in range(H * W):
            qy, qx = divmod(n, W)
            logits = torch.zeros(B, H * W)
            for m in range(H * W):
                ky, kx = divmod(m, W)
                offset = abs(qy - ky) * window + abs(qx - kx)
                logits[:, m] = (q[:, :, qy, qx] * k[:, :, ky, kx]).sum(1) \
                    / kd**0.5 + module.attention_biases[j, offset]
            weights = logits.softmax(dim=1)  # B, N
            out[:, :, qy, qx] = torch.einsum('bcn,bn->bc', v.flatten(2),
                                             weights)
        outputs.append(out)
        previous = out
    return conv_bn(module.proj[1], F.relu(torch.cat(outputs, 1)))


@pytest.mark.parametrize('dim, heads, kernels', [(64, 4, [5, 5, 5, 5]),
                                                 (48, 3, [7, 5, 3]),
                                                 (32, 2, [7, 5])])
def test_matches_plain_reading_of_the_paper(dim, heads, kernels):
    window = 4
    module = CascadedGroupAttention(dim, 16, heads, window, kernels).eval()
    randomize_weights(module)
    x = torch.randn(3, dim, window, window)
    with torch.no_grad():
        ours = module(x)
        plain = plain_cascaded_group_attention(module, x, window)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)


def test_window_partition_roundtrip():
    x = torch.randn(2, 5, 14, 21)
    windows = window_partition(x, 7)
    assert windows.shape == (2 * 2 * 3, 5, 7, 7)
    torch.testing.assert_close(windows[1], x[0, :, 0:7, 7:14])
    torch.testing.assert_close(window_reverse(windows, 2, 14, 21), x)


def test_local_window_attention_pads_then_crops():
    module = LocalWindowAttention(32, 16, 2, 4, [3, 3]).eval()
    randomize_weights(module)
    x = torch.randn(1, 32, 6, 9)
    with torch.no_grad():
        out = module(x)
        padded = F.pad(x, (0, 3, 0, 2))  # to 8 x 12
        expected = torch.zeros_like(padded)
        for y in range(0, 8, 4):
            for x0 in range(0, 12, 4):
                expected[:, :, y:y + 4, x0:x0 + 4] = module.attn(
                    padded[:, :, y:y + 4, x0:x0 + 4])
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected[:, :, :6, :9])


def test_train_mode_gradients_reach_bias_table():
    module = CascadedGroupAttention(32, 16, 2, 7, [5, 5]).train()
    module.proj[1].bn.weight.data.fill_(1.)  # the branch starts at zero
    module(torch.randn(2, 32, 7, 7)).square().sum().backward()
    assert module.attention_biases.grad.abs().sum() > 0
