"""Folding the BatchNorms of a whole model into their convolutions."""
from mmcv.cnn import fuse_conv_bn


def fold_batch_norm(model):
    """Fold every BatchNorm into the convolution before it, in place, for
    inference (outputs unchanged in eval mode).

    Modules with ``switch_to_deploy`` (the OpenMMLab convention; here
    EfficientViT and its ConvBN layers) switch to their fused form; mmcv's
    ``fuse_conv_bn`` folds the remaining conv + BN pairs (necks, heads).

    Args:
        model (nn.Module): A backbone, a detector or segmentor, or a module
            wrapping one.

    Returns:
        nn.Module: ``model``.
    """
    for module in list(model.modules()):
        if hasattr(module, 'switch_to_deploy'):
            module.switch_to_deploy()
    return fuse_conv_bn(model)
