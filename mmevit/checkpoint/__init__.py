"""Checkpoint files: safe reading (a restricted unpickler), the weights
inside them, and key comparison. Imports nothing of mmevit's models; the
backbone's key conversion lives beside it (:mod:`mmevit.models.backbones`)
and whole-model loading above the models (:mod:`mmevit.engine`)."""
from .reading import WRAPPERS, extract_backbone_state_dict, model_weights, read_checkpoint
from .safe_load import (
    ALLOWLIST_PICKLE,
    CheckpointError,
    allowed_globals,
    load_checkpoint_file,
    register_local_checkpoint_loader,
)

__all__ = [
    'WRAPPERS', 'extract_backbone_state_dict', 'model_weights',
    'read_checkpoint', 'allowed_globals', 'CheckpointError', 'ALLOWLIST_PICKLE',
    'load_checkpoint_file', 'register_local_checkpoint_loader'
]
