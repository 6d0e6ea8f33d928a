from .launch import prepare_cpu_distributed, replace_sync_bn, task_of
from .seg_data_check import SegDataCheckHook

__all__ = ['prepare_cpu_distributed', 'replace_sync_bn', 'task_of',
           'SegDataCheckHook']
