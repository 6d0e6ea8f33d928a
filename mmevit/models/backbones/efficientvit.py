"""EfficientViT backbone for OpenMMLab detectors and segmentors."""
import copy
import warnings

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...errors import ConfigError
from ...registry import MODELS
from ...stack import register_load_state_dict_pre_hook
from ..layers import ConvBN, Downsample, EfficientViTBlock
from .key_conversion import convert_efficientvit_state_dict
from .pretrained import load_pretrained_backbone


class PatchEmbed(nn.Sequential):
    """Four 3x3 stride-2 ConvBN layers (c/8, c/4, c/2, c) with ReLU between.

    Args:
        in_channels (int): Image channels.
        embed_dim (int): Output channels ``c``.
        deploy (bool): Build ConvBN layers fused. Defaults to False.
    """

    def __init__(self, in_channels, embed_dim, deploy=False):
        super().__init__()
        widths = [in_channels] + [embed_dim // 8, embed_dim // 4,
                                  embed_dim // 2, embed_dim]
        for i in range(4):
            if i > 0:
                self.add_module(f'relu{i}', nn.ReLU(inplace=True))
            self.add_module(
                f'conv{i + 1}',
                ConvBN(widths[i], widths[i + 1], 3, stride=2, padding=1,
                       deploy=deploy))


class EfficientViTStage(nn.Module):
    """An optional :class:`Downsample` followed by EfficientViT blocks.

    Args:
        in_channels (int | None): Channels of the previous stage, None for
            the first stage (no downsampling).
        blocks (list[nn.Module]): The stage's blocks.
        with_cp (bool): Checkpoint each block to save memory. Defaults to
            False.
        deploy (bool): Build ConvBN layers fused. Defaults to False.
    """

    def __init__(self, in_channels, out_channels, blocks, with_cp=False,
                 deploy=False):
        super().__init__()
        self.downsample = (nn.Identity() if in_channels is None else
                           Downsample(in_channels, out_channels, deploy))
        self.blocks = nn.Sequential(*blocks)
        self.with_cp = with_cp

    def forward(self, x):
        x = self.downsample(x)
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def _convert_loaded_weights(module, state_dict, prefix, *args):
    """Load-state-dict pre-hook, the one place weights are converted: bring
    the backbone's entries of any checkpoint (official layout, other window
    sizes) into mmevit's layout, whoever loads them (mmevit's strict loaders,
    mmengine's ``load_checkpoint``, a plain ``load_state_dict``)."""
    keys = [k for k in state_dict if k.startswith(prefix)]
    weights = {k[len(prefix):]: state_dict.pop(k) for k in keys}
    weights = convert_efficientvit_state_dict(weights, module.window_sizes)
    state_dict.update({prefix + k: v for k, v in weights.items()})


#: Checkpoint schemes of mmengine's model zoos (ResNet, VGG, ... weights;
#: none holds EfficientViT): a stock config's ``pretrained`` for its own
#: backbone.
_MODEL_ZOO_SCHEMES = ('open-mmlab://', 'openmmlab://', 'torchvision://',
                      'modelzoo://', 'mmcls://')


def _pretrained_init_cfg(pretrained, init_cfg):
    """``init_cfg`` with mmseg's deprecated ``pretrained`` argument turned
    into ``dict(type='Pretrained', checkpoint=pretrained)``, as mmseg's
    backbones do."""
    if pretrained is None:
        return init_cfg
    where = (f'pretrained={pretrained!r} (mmseg segmentors hand their '
             'model.pretrained to the backbone)')
    if not isinstance(pretrained, str):
        raise ConfigError(f'{where} must be a checkpoint path or URL, or '
                          'None')
    if init_cfg is not None:
        raise ConfigError(
            f'{where} and backbone init_cfg={init_cfg!r} are both set; keep '
            'one: model.pretrained=None keeps init_cfg')
    if pretrained.startswith(_MODEL_ZOO_SCHEMES):
        raise ConfigError(
            f'{where} names another backbone\'s weights in a model zoo, '
            'which has no EfficientViT; set model.pretrained=None (and '
            "model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...)"
            ') or model.pretrained=EFFICIENTVIT_CHECKPOINT')
    warnings.warn('DeprecationWarning: pretrained is deprecated, please use '
                  f"init_cfg=dict(type='Pretrained', checkpoint={pretrained!r})"
                  ' instead')
    return dict(type='Pretrained', checkpoint=pretrained)


@MODELS.register_module()
class EfficientViT(BaseModule):
    """EfficientViT backbone.

    A PyTorch implementation of `EfficientViT: Memory Efficient Vision
    Transformer with Cascaded Group Attention
    <https://arxiv.org/abs/2305.07027>`_ (Liu et al., CVPR 2023), with the
    module layout of the released ImageNet checkpoints. Registered in
    mmengine's root ``MODELS``, so mmdet, mmseg and other OpenMMLab 2.x
    configs build it with ``type='EfficientViT'``.

    Outputs are at strides 16, 32 and 64 with the arch's ``embed_dims``
    channels. Any input size works: attention windows are zero-padded.

    Speed choices (measured in docs/benchmarks.md, "The speed choices in
    one place"; none depends on the grad mode or on private torch
    attributes):

    - In eval mode BN is folded into its convolution at every forward, from
      the current weights (nothing is cached, so outputs follow any change
      of the weights, ``.data`` writes included). That costs about 10 % of
      an M4 forward at 224x224 and 2 % at 800x1344 (one CPU thread, against
      :meth:`switch_to_deploy`); for inference at full speed use
      :meth:`switch_to_deploy` or ``deploy=True``.
    - On CPU the input is converted to channels-last memory once (oneDNN's
      depthwise and 1x1 convolutions are faster on it: -16 % at 800x1344);
      the outputs are returned contiguous. Other devices keep NCHW.
    - Attention windows are padded only when the map is not a multiple of
      the window, and always while ``torch.jit.trace``, ``torch.compile``
      or ``torch.export`` records a graph (so that it holds for every size).

    Args:
        arch (str | dict): ``'m0'``..``'m5'``, or a dict with exactly the
            keys ``embed_dims``, ``depths``, ``num_heads`` (three entries
            each) and ``q_kernels`` (one depthwise q kernel per head).
            Defaults to ``'m4'``.
        in_channels (int): Image channels. Defaults to 3.
        key_dim (int): Query/key channels per head. Defaults to 16.
        window_sizes (Sequence[int]): Attention window per stage; pretrained
            bias tables are resized to fit. Defaults to (7, 7, 7).
        out_indices (Sequence[int]): Stages (0..2) whose outputs are
            returned. Defaults to (0, 1, 2).
        frozen_stages (int): -1 freezes nothing, 0 the patch embedding, i > 0
            also stages 1..i; frozen parts stay in eval mode. Defaults to -1.
        norm_eval (bool): Keep every BN in eval mode while training (the
            official detection recipe). Defaults to False.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        drop_path_rate (float): Stochastic depth, rising linearly over the
            blocks. Defaults to 0.
        deploy (bool): Build with every BN folded into its conv (see
            :meth:`switch_to_deploy`). Defaults to False.
        pretrained (str, optional): Deprecated, as in mmseg's backbones
            (mmseg's segmentors hand their ``model.pretrained`` to the
            backbone): a checkpoint path or URL, the same as
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``, with
            a deprecation warning. Defaults to None.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH_OR_URL)`` loads an official, timm or mmevit
            checkpoint strictly. Defaults to None.
    """

    arch_zoo = {
        'm0': dict(embed_dims=[64, 128, 192], depths=[1, 2, 3],
                   num_heads=[4, 4, 4], q_kernels=[5, 5, 5, 5]),
        'm1': dict(embed_dims=[128, 144, 192], depths=[1, 2, 3],
                   num_heads=[2, 3, 3], q_kernels=[7, 5, 3, 3]),
        'm2': dict(embed_dims=[128, 192, 224], depths=[1, 2, 3],
                   num_heads=[4, 3, 2], q_kernels=[7, 5, 3, 3]),
        'm3': dict(embed_dims=[128, 240, 320], depths=[1, 2, 3],
                   num_heads=[4, 3, 4], q_kernels=[5, 5, 5, 5]),
        'm4': dict(embed_dims=[128, 256, 384], depths=[1, 2, 3],
                   num_heads=[4, 4, 4], q_kernels=[7, 5, 3, 3]),
        'm5': dict(embed_dims=[192, 288, 384], depths=[1, 3, 4],
                   num_heads=[3, 3, 4], q_kernels=[7, 5, 3, 3]),
    }
    num_stages = 3

    def __init__(self,
                 arch='m4',
                 in_channels=3,
                 key_dim=16,
                 window_sizes=(7, 7, 7),
                 out_indices=(0, 1, 2),
                 frozen_stages=-1,
                 norm_eval=False,
                 with_cp=False,
                 drop_path_rate=0.,
                 deploy=False,
                 pretrained=None,
                 init_cfg=None):
        super().__init__(init_cfg=_pretrained_init_cfg(pretrained, init_cfg))
        self.arch = self._parse_arch(arch)
        self.window_sizes = self._check_window_sizes(window_sizes)
        self.out_indices = self._check_out_indices(out_indices)
        if not -1 <= frozen_stages <= self.num_stages:
            raise ConfigError(
                f'frozen_stages={frozen_stages} is invalid; expected -1 '
                f'(nothing), 0 (patch embedding) or 1..{self.num_stages}')
        if not 0 <= drop_path_rate < 1:
            raise ConfigError(f'drop_path_rate={drop_path_rate} is invalid; '
                              'expected a probability in [0, 1)')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.deploy = deploy

        dims = self.arch['embed_dims']
        depths = self.arch['depths']
        self.embed_dims = list(dims)
        self.patch_embed = PatchEmbed(in_channels, dims[0], deploy)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i in range(self.num_stages):
            first = sum(depths[:i])
            blocks = [
                EfficientViTBlock(dims[i], key_dim, self.arch['num_heads'][i],
                                  self.window_sizes[i],
                                  self.arch['q_kernels'], rates[first + j],
                                  deploy) for j in range(depths[i])
            ]
            self.stages.append(
                EfficientViTStage(dims[i - 1] if i > 0 else None, dims[i],
                                  blocks, with_cp, deploy))
        self._freeze_stages()
        register_load_state_dict_pre_hook(self, _convert_loaded_weights)

    @classmethod
    def _parse_arch(cls, arch):
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ConfigError(f'Unknown arch {arch!r}; choose one of '
                                 f'{sorted(cls.arch_zoo)} or pass a dict')
            return copy.deepcopy(cls.arch_zoo[arch.lower()])
        if not isinstance(arch, dict):
            raise ConfigError(f'arch must be a str or dict, got {arch!r}')
        expected = set(cls.arch_zoo['m0'])
        if set(arch) != expected:
            raise ConfigError(
                f'Custom arch keys {sorted(arch)} differ from the required '
                f'{sorted(expected)} (missing {sorted(expected - set(arch))},'
                f' unexpected {sorted(set(arch) - expected)})')
        for key in ('embed_dims', 'depths', 'num_heads'):
            if len(arch[key]) != cls.num_stages:
                raise ConfigError(f'arch[{key!r}]={arch[key]} needs '
                                 f'{cls.num_stages} entries')
        for dim, heads in zip(arch['embed_dims'], arch['num_heads']):
            if heads < 1 or dim % heads:
                raise ConfigError(f'arch embed_dims {arch["embed_dims"]} must '
                                 f'be divisible by num_heads '
                                 f'{arch["num_heads"]}')
        if arch['embed_dims'][0] % 8:
            raise ConfigError(f'arch embed_dims[0]={arch["embed_dims"][0]} '
                             'must be divisible by 8 (patch embedding)')
        if len(arch['q_kernels']) < max(arch['num_heads']):
            raise ConfigError(f'arch q_kernels={arch["q_kernels"]} needs one '
                             f'kernel per head (max heads '
                             f'{max(arch["num_heads"])})')
        return copy.deepcopy(dict(arch))

    @classmethod
    def _check_window_sizes(cls, window_sizes):
        if isinstance(window_sizes, int):
            window_sizes = [window_sizes] * cls.num_stages
        window_sizes = list(window_sizes)
        if len(window_sizes) != cls.num_stages or any(
                not isinstance(w, int) or w < 1 for w in window_sizes):
            raise ConfigError(f'window_sizes={window_sizes} must be '
                             f'{cls.num_stages} positive ints')
        return window_sizes

    @classmethod
    def _check_out_indices(cls, out_indices):
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        out_indices = sorted(set(out_indices))
        if not out_indices or any(not 0 <= i < cls.num_stages
                                  for i in out_indices):
            raise ConfigError(f'out_indices={out_indices} must be a non-empty '
                             f'subset of {list(range(cls.num_stages))}')
        return tuple(out_indices)

    def _freeze_stages(self):
        frozen = []
        if self.frozen_stages >= 0:
            frozen.append(self.patch_embed)
        frozen.extend(self.stages[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode=True):
        """Set train mode, keeping frozen parts (and BN if norm_eval) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def init_weights(self):
        """Load ``init_cfg``'s checkpoint strictly, or keep the default init."""
        if self.init_cfg is None or self.init_cfg.get('type') != 'Pretrained':
            super().init_weights()
            return
        load_pretrained_backbone(self, self.init_cfg['checkpoint'])

    def switch_to_deploy(self):
        """Fold every BN into its conv, in place. Outputs are unchanged in
        eval mode; the fused model is for inference only."""
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.switch_to_deploy()
        self.deploy = True

    def forward(self, x):
        if x.device.type == 'cpu':
            # the one device-dependent speed choice (class docstring): oneDNN's
            # depthwise and 1x1 convolutions are faster on channels-last maps
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x.contiguous())
        return tuple(outs)
