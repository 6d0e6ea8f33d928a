from .attention import (
                        CascadedGroupAttention,
                        LocalWindowAttention,
                        relative_offset_index,
                        window_partition,
                        window_reverse,
)
from .blocks import FFN, Downsample, EfficientViTBlock, PatchMerging, Residual, SqueezeExcite
from .conv_bn import ConvBN, fold_bn_into_conv

__all__ = [
    'CascadedGroupAttention', 'LocalWindowAttention', 'relative_offset_index',
    'window_partition', 'window_reverse', 'FFN', 'Downsample',
    'EfficientViTBlock', 'PatchMerging', 'Residual', 'SqueezeExcite',
    'ConvBN', 'fold_bn_into_conv'
]
