from .launch import prepare_cpu_distributed, replace_sync_bn, task_of

__all__ = ['prepare_cpu_distributed', 'replace_sync_bn', 'task_of']
