"""Running mmdet/mmseg models with mmengine: the strict-loading runner,
whole-model checkpoint loading, the crash-safe checkpoint hook, preemption,
exactly resumable epoch-based training, the segmentation data check, which
codebase a config belongs to, and the model inside a runner's wrappers."""
from .checkpoint_hook import SafeCheckpointHook
from .exact_resume import ExactResumeEpochBasedTrainLoop
from .model_loading import check_model_weights, load_model_checkpoint, load_model_weights
from .preemption import PREEMPTED_EXIT_STATUS, PreemptionHook, TrainingPreempted
from .runner import StrictLoadRunner, build_runner
from .seg_data_check import SegDataCheckHook
from .task import TASKS, task_of, task_registry
from .wrapped_model import unwrap_model

__all__ = ['SafeCheckpointHook', 'ExactResumeEpochBasedTrainLoop',
           'PREEMPTED_EXIT_STATUS', 'PreemptionHook', 'TrainingPreempted',
           'check_model_weights', 'load_model_checkpoint',
           'load_model_weights', 'StrictLoadRunner', 'build_runner',
           'SegDataCheckHook', 'TASKS', 'task_of', 'task_registry',
           'unwrap_model']
