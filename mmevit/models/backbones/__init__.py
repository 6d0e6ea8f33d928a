from .efficientvit import EfficientViT

__all__ = ['EfficientViT']
