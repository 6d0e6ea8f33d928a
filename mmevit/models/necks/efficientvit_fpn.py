"""FPN with extra transposed-conv levels for EfficientViT's stride-16 start."""
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from ...errors import ConfigError
from ...registry import MODELS

_EXTRA_SOURCES = ('on_input', 'on_lateral', 'on_output')


@MODELS.register_module()
class EfficientViTFPN(BaseModule):
    """Feature pyramid over EfficientViT's stride 16/32/64 outputs.

    A standard top-down FPN; then ``num_extra_trans_convs`` 2x2 stride-2
    transposed convs grow finer levels in a chain from the finest lateral,
    each level then smoothed by a 3x3 conv (``extra_fpn_convs[i]`` on the
    i-th finest level, the official pairing), and ``add_extra_convs`` or
    max-pooling adds coarser ones.
    Outputs are ordered finest first; with fewer ``num_outs`` than levels the
    coarsest are left out (no conv is built for them). With the paper's
    settings:

    - RetinaNet: ``num_extra_trans_convs=1, add_extra_convs='on_input',
      num_outs=5`` -> strides 8, 16, 32, 64, 128.
    - Mask R-CNN: ``num_extra_trans_convs=2, num_outs=5`` -> strides 4, 8,
      16, 32, 64.
    - Semantic FPN: ``num_extra_trans_convs=2, num_outs=4`` -> strides 4, 8,
      16, 32.

    Args:
        in_channels (list[int]): Channels of each backbone level.
        out_channels (int): Channels of every output.
        num_outs (int): Number of outputs, extra levels included.
        num_extra_trans_convs (int): Finer levels made by transposed convs.
            Defaults to 0.
        add_extra_convs (bool | str): False for max-pooled coarser levels,
            else the source of stride-2 3x3 convs: 'on_input', 'on_lateral'
            or 'on_output' (True means 'on_input'). Defaults to False.
        relu_before_extra_convs (bool): ReLU before the second and later
            extra convs. Defaults to False.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict, optional): Norm layer config. Defaults to None.
        act_cfg (dict, optional): Activation config. Defaults to None.
        init_cfg (dict): Defaults to Xavier-uniform on Conv2d.
    """

    def __init__(self,
                 in_channels,
                 out_channels,
                 num_outs,
                 num_extra_trans_convs=0,
                 add_extra_convs=False,
                 relu_before_extra_convs=False,
                 conv_cfg=None,
                 norm_cfg=None,
                 act_cfg=None,
                 init_cfg=dict(type='Xavier', layer='Conv2d',
                               distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        if add_extra_convs and add_extra_convs not in _EXTRA_SOURCES:
            raise ConfigError(f'add_extra_convs={add_extra_convs!r}; choose '
                             f'False, True or one of {_EXTRA_SOURCES}')
        num_levels = num_outs - num_extra_trans_convs  # stride 16 and coarser
        if num_extra_trans_convs < 0 or num_levels < 1:
            raise ConfigError(
                f'num_outs={num_outs} must exceed num_extra_trans_convs='
                f'{num_extra_trans_convs} (>= 0) by at least one level')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.num_backbone_outs = min(num_levels, len(in_channels))
        self.num_coarse = max(num_levels - len(in_channels), 0)
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = relu_before_extra_convs

        def conv(in_ch, kernel, **kwargs):
            return ConvModule(in_ch, out_channels, kernel, conv_cfg=conv_cfg,
                              norm_cfg=norm_cfg, act_cfg=act_cfg,
                              inplace=False, **kwargs)

        self.lateral_convs = nn.ModuleList(conv(c, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(
            conv(out_channels, 3, padding=1)
            for _ in range(self.num_backbone_outs))
        if add_extra_convs:
            for i in range(self.num_coarse):
                in_ch = (in_channels[-1] if i == 0
                         and add_extra_convs == 'on_input' else out_channels)
                self.fpn_convs.append(conv(in_ch, 3, stride=2, padding=1))
        self.extra_trans_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 2, stride=2,
                       conv_cfg=dict(type='deconv'), norm_cfg=norm_cfg,
                       act_cfg=act_cfg, inplace=False)
            for _ in range(num_extra_trans_convs))
        self.extra_fpn_convs = nn.ModuleList(
            conv(out_channels, 3, padding=1)
            for _ in range(num_extra_trans_convs))

    def _check_inputs(self, inputs):
        channels = [x.shape[1] for x in inputs]
        if channels != self.in_channels:
            raise ConfigError(
                f'EfficientViTFPN got inputs with channels {channels}, but '
                f'in_channels={self.in_channels}; set neck.in_channels to '
                'the backbone arch embed_dims (of its out_indices)')

    def forward(self, inputs):
        """inputs: backbone levels, finest first -> tuple of num_outs maps."""
        self._check_inputs(inputs)
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[2:], mode='nearest')

        # The transposed convs run in a chain from the stride-16 lateral
        # (trans conv 0 makes stride 8, 1 makes stride 4); their outputs are
        # listed finest first and extra_fpn_convs[i] smooths the i-th of that
        # list, as the official network does: with two, extra_fpn_convs.0
        # runs on stride 4 and extra_fpn_convs.1 on stride 8.
        finer, source = [], laterals[0]
        for trans_conv in self.extra_trans_convs:
            source = trans_conv(source)  # 2x the resolution
            finer.insert(0, source)
        finer = [conv(x) for conv, x in zip(self.extra_fpn_convs, finer)]

        outs = [self.fpn_convs[i](laterals[i])
                for i in range(self.num_backbone_outs)]
        for i in range(self.num_coarse):
            outs.append(self._coarser_level(i, inputs, laterals, outs))
        return tuple(finer + outs)

    def _coarser_level(self, i, inputs, laterals, outs):
        if not self.add_extra_convs:
            return F.max_pool2d(outs[-1], 1, stride=2)
        conv = self.fpn_convs[len(laterals) + i]
        if i > 0:
            x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
            return conv(x)
        source = {'on_input': inputs[-1], 'on_lateral': laterals[-1],
                  'on_output': outs[-1]}[self.add_extra_convs]
        return conv(source)
