"""Export wrapper of an mmseg ``EncoderDecoder``: image -> logits."""
import torch.nn.functional as F
from torch import nn


class ShapeFollowingUpsample(nn.Module):
    """mmseg's ``Upsample`` with its output size taken from the input tensor.

    mmseg computes ``size=[int(t * scale_factor) ...]`` in Python, which an
    exporter freezes at the traced size. Here an integer factor multiplies
    the symbolic size and any other factor is handed to ``F.interpolate``
    with ``recompute_scale_factor=True`` (the same floor(size * factor)
    output and size-based sampling as mmseg).

    Args:
        upsample (nn.Module): The mmseg ``Upsample`` to replace.
    """

    def __init__(self, upsample):
        super().__init__()
        self.size = upsample.size
        self.scale_factor = upsample.scale_factor
        self.mode = upsample.mode
        self.align_corners = upsample.align_corners

    def forward(self, x):
        if self.size:
            return F.interpolate(x, self.size, None, self.mode,
                                 self.align_corners)
        factor = self.scale_factor
        if float(factor).is_integer():
            size = [x.shape[2] * int(factor), x.shape[3] * int(factor)]
            return F.interpolate(x, size, None, self.mode, self.align_corners)
        return F.interpolate(x, None, factor, self.mode, self.align_corners,
                             recompute_scale_factor=True)


def replace_frozen_upsample(model):
    """Swap every mmseg ``Upsample`` of ``model`` for
    :class:`ShapeFollowingUpsample` (in place).

    Returns:
        int: Number of swapped modules.
    """
    from mmseg.models.utils import Upsample
    swaps = [(name, module) for name, module in model.named_modules()
             if type(module) is Upsample]
    for name, module in swaps:
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name)
        setattr(parent, child, ShapeFollowingUpsample(module))
    return len(swaps)


class SegmentorExport(nn.Module):
    """Normalised image batch -> logits at the input resolution.

    What ``EncoderDecoder.predict`` computes in ``whole`` mode before the
    resizing to the original image: backbone, neck, decode head, bilinear
    resize to the input's height and width.

    Args:
        segmentor (nn.Module): An mmseg ``EncoderDecoder`` in eval mode;
            its ``Upsample`` modules are replaced in place.
    """

    input_names = ('input', )
    output_names = ('seg_logits', )

    def __init__(self, segmentor):
        super().__init__()
        replace_frozen_upsample(segmentor)
        self.segmentor = segmentor
        self.num_classes = segmentor.decode_head.num_classes

    def forward(self, x):
        feats = self.segmentor.extract_feat(x)
        logits = self.segmentor.decode_head(feats)
        return F.interpolate(
            logits, x.shape[2:], None, 'bilinear',
            self.segmentor.decode_head.align_corners)
