"""Running mmdet/mmseg models with mmengine: the strict-loading runner,
whole-model checkpoint loading, the crash-safe checkpoint hook, the
segmentation data check, which codebase a config belongs to, and the
model inside a runner's wrappers."""
from .checkpoint_hook import SafeCheckpointHook
from .model_loading import check_model_weights, load_model_checkpoint, load_model_weights
from .runner import StrictLoadRunner, build_runner
from .seg_data_check import SegDataCheckHook
from .task import TASKS, task_of
from .wrapped_model import unwrap_model

__all__ = ['SafeCheckpointHook', 'check_model_weights', 'load_model_checkpoint',
           'load_model_weights', 'StrictLoadRunner', 'build_runner',
           'SegDataCheckHook', 'TASKS', 'task_of', 'unwrap_model']
