"""Parameter and FLOP counts with torch's dispatch-level flop counter.

The counter sees every convolution and matrix product that actually runs
(whatever the Python control flow), so attention over padded windows is
counted as executed. It counts a multiply-add as 2 FLOP; papers in this field
(EfficientViT, LeViT, Swin) report multiply-adds and call them FLOPs, so both
are returned.
"""
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mmevit.models import EfficientViT


def count_parameters(module):
    """Number of parameters of ``module`` (buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def count_flops(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` once without gradients and count FLOPs.

    Args:
        fn (Callable): Usually a module or a bound method of one.

    Returns:
        dict: ``flops`` (2 per multiply-add), ``macs`` (multiply-adds, the
        papers' "FLOPs") and ``by_operator`` (FLOPs per aten operator).
    """
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn(*args, **kwargs)
    flops = counter.get_total_flops()
    by_op = {str(op): int(n) for op, n in
             counter.get_flop_counts().get('Global', {}).items()}
    return dict(flops=int(flops), macs=int(flops) // 2, by_operator=by_op)


#: ImageNet classifiers at 224 x 224 as published (params in M, FLOPs as
#: multiply-adds in M), Liu et al., CVPR 2023, Table 1.
PAPER_COMPLEXITY = {
    'm0': (2.3, 79), 'm1': (3.0, 167), 'm2': (4.2, 201),
    'm3': (6.9, 263), 'm4': (8.8, 299), 'm5': (12.4, 522),
}


def classifier_windows(size, window=7):
    """Window per stage of the official classifier at a square input: the
    window is clamped to the feature map (4 x 4 in stage 3 at 224)."""
    windows, resolution = [], -(-size // 16)
    for _ in range(3):
        windows.append(min(window, resolution))
        resolution = (resolution - 1) // 2 + 1
    return windows


class Classifier(nn.Module):
    """The paper's ImageNet classifier of an arch, for its figures:
    backbone with the windows clamped to the feature maps, global average
    pooling, BatchNorm1d and a linear head (random weights, eval mode).

    Args:
        arch (str): 'm0'..'m5'.
        size (int): Square input side.
        num_classes (int): Classes of the head. Defaults to 1000.
    """

    def __init__(self, arch, size, num_classes=1000):
        super().__init__()
        self.backbone = EfficientViT(arch=arch,
                                     window_sizes=classifier_windows(size),
                                     out_indices=(2, ))
        width = self.backbone.embed_dims[-1]
        self.head = nn.Sequential(nn.BatchNorm1d(width),
                                  nn.Linear(width, num_classes))
        self.eval()

    def forward(self, x):
        return self.head(self.backbone(x)[0].mean((2, 3)))


def classifier_complexity(arch, size, num_classes=1000):
    """Parameters and multiply-adds of the ImageNet classifier of ``arch``
    (:class:`Classifier`, the papers' figures).

    Returns:
        dict: ``params`` and ``macs``.
    """
    classifier = Classifier(arch, size, num_classes)
    macs = count_flops(classifier, torch.zeros(1, 3, size, size))['macs']
    return dict(params=count_parameters(classifier), macs=macs)
