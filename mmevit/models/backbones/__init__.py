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
