from .backbones import EfficientViT
from .bn_folding import fold_batch_norm
from .necks import EfficientViTFPN

__all__ = ['EfficientViT', 'EfficientViTFPN', 'fold_batch_norm']
