from .checkpoint_hook import SafeCheckpointHook, use_safe_checkpoint_hook
from .config_options import merge_cfg_options
from .data_errors import explain_data_errors
from .launch import end_distributed, prepare_cpu_distributed, replace_sync_bn, task_of
from .model_checks import check_model_channels
from .model_loading import check_model_weights, load_model_checkpoint, load_model_weights
from .runner import StrictLoadRunner, build_runner
from .seg_data_check import SegDataCheckHook
from .work_dir_lock import exclusive_work_dir

__all__ = ['end_distributed', 'prepare_cpu_distributed', 'replace_sync_bn', 'task_of',
           'SegDataCheckHook', 'SafeCheckpointHook', 'use_safe_checkpoint_hook',
           'StrictLoadRunner', 'build_runner', 'check_model_channels', 'merge_cfg_options',
           'explain_data_errors', 'exclusive_work_dir', 'check_model_weights',
           'load_model_checkpoint', 'load_model_weights']
