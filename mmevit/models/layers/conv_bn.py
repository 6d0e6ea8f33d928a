"""Conv2d + BatchNorm2d pair that can be folded into one convolution."""
import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-5


def fold_bn_into_conv(conv_weight, bn_weight, bn_bias, running_mean,
                      running_var, eps):
    """Return ``(weight, bias)`` of the conv equivalent to conv -> BN (eval).

    Args:
        conv_weight (Tensor): Weight of a bias-free convolution.
        bn_weight, bn_bias, running_mean, running_var (Tensor): BN state.
        eps (float): BN epsilon.
    """
    scale = bn_weight / torch.sqrt(running_var + eps)
    weight = conv_weight * scale.reshape(-1, 1, 1, 1)
    bias = bn_bias - running_mean * scale
    return weight, bias


class ConvBN(nn.Sequential):
    """A bias-free convolution followed by BatchNorm2d.

    In deploy mode the pair is one biased convolution (``bn`` is an
    ``Identity``). A deploy-mode module still loads an unfused state dict: the
    BN entries are folded into the convolution on load.

    With BN in eval mode the pair also runs as one convolution, folded from
    the current weights and running statistics at every forward (nothing is
    cached, so any change of the weights, ``.data`` writes included, shows
    in the next output; in the autograd graph, so ``norm_eval`` training
    gets exact gradients). :meth:`switch_to_deploy` folds once, for good.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel size. Defaults to 1.
        stride (int): Stride. Defaults to 1.
        padding (int): Zero padding. Defaults to 0.
        groups (int): Convolution groups. Defaults to 1.
        bn_weight_init (float): Initial BN weight; 0 makes a residual branch
            start as identity. Defaults to 1.
        deploy (bool): Build the fused form. Defaults to False.
    """

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1,
                 padding=0, groups=1, bn_weight_init=1.0, deploy=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding, groups=groups, bias=deploy)
        if deploy:
            self.bn = nn.Identity()
        else:
            self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
            nn.init.constant_(self.bn.weight, bn_weight_init)
            nn.init.zeros_(self.bn.bias)

    @property
    def deploy(self):
        return isinstance(self.bn, nn.Identity)

    @property
    def uses_batch_statistics(self):
        """True when BN normalises with batch statistics (train mode)."""
        return not self.deploy and self.bn.training

    def fused_weight_bias(self):
        """``(weight, bias)`` of the one convolution this pair computes with
        BN in eval mode (or deploy mode)."""
        if self.deploy:
            return self.conv.weight, self.conv.bias
        bn = self.bn
        return fold_bn_into_conv(self.conv.weight, bn.weight, bn.bias,
                                 bn.running_mean, bn.running_var, bn.eps)

    def forward(self, x):
        if self.uses_batch_statistics:
            return self.bn(self.conv(x))
        weight, bias = self.fused_weight_bias()
        conv = self.conv
        return F.conv2d(x, weight, bias, conv.stride, conv.padding,
                        conv.dilation, conv.groups)

    def linear(self, x):
        """Apply a 1x1 ConvBN to channel-last tokens: (..., C_in) ->
        (..., C_out), without moving the channels first."""
        if self.uses_batch_statistics:
            y = F.linear(x, self.conv.weight.flatten(1))
            return self.bn(y.reshape(-1, y.shape[-1], 1, 1)).view(y.shape)
        weight, bias = self.fused_weight_bias()
        return F.linear(x, weight.flatten(1), bias)

    @torch.no_grad()
    def switch_to_deploy(self):
        """Fold BN into the convolution in place (running statistics used)."""
        if self.deploy:
            return
        conv, bn = self.conv, self.bn
        weight, bias = fold_bn_into_conv(conv.weight, bn.weight, bn.bias,
                                         bn.running_mean, bn.running_var,
                                         bn.eps)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels,
                          conv.kernel_size, conv.stride, conv.padding,
                          groups=conv.groups, bias=True).to(conv.weight)
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
        self.conv = fused
        self.bn = nn.Identity()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        bn_prefix = prefix + 'bn.'
        unfused = [prefix + 'conv.weight'] + [
            bn_prefix + k
            for k in ('weight', 'bias', 'running_mean', 'running_var')]
        # an incomplete pair is left as it is, for the strict key check
        if self.deploy and all(k in state_dict for k in unfused):
            weight, bias = fold_bn_into_conv(
                *(state_dict.pop(k) for k in unfused), BN_EPS)
            state_dict.pop(bn_prefix + 'num_batches_tracked', None)
            state_dict[prefix + 'conv.weight'] = weight
            state_dict[prefix + 'conv.bias'] = bias
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
