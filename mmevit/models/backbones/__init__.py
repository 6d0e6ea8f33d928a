"""The EfficientViT backbone, the conversion of its checkpoint keys (a leaf
module: its load pre-hook is the one place it runs) and its strict loading
of pretrained weights."""
from .efficientvit import EfficientViT
from .key_conversion import (
                             convert_efficientvit_state_dict,
                             guess_arch_name,
                             official_key_to_mmevit,
                             resize_attention_biases,
)
from .pretrained import check_backbone_weights, load_pretrained_backbone

__all__ = ['EfficientViT', 'convert_efficientvit_state_dict', 'guess_arch_name',
           'official_key_to_mmevit', 'resize_attention_biases',
           'check_backbone_weights', 'load_pretrained_backbone']
