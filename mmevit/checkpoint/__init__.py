from .conversion import (
                         convert_efficientvit_state_dict,
                         guess_arch_name,
                         official_key_to_mmevit,
                         resize_attention_biases,
)
from .model_loading import check_model_weights, load_model_checkpoint, load_model_weights
from .pretrained import extract_backbone_state_dict, load_pretrained_backbone, read_checkpoint
from .safe_load import (
                         ALLOWLIST_PICKLE,
                         SAFE_GLOBALS,
                         CheckpointError,
                         load_checkpoint_file,
                         register_local_checkpoint_loader,
)

__all__ = [
    'convert_efficientvit_state_dict', 'guess_arch_name',
    'official_key_to_mmevit', 'resize_attention_biases',
    'extract_backbone_state_dict', 'load_pretrained_backbone',
    'read_checkpoint', 'SAFE_GLOBALS', 'CheckpointError',
    'ALLOWLIST_PICKLE', 'load_checkpoint_file',
    'register_local_checkpoint_loader', 'check_model_weights',
    'load_model_checkpoint', 'load_model_weights'
]
