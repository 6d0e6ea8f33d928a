"""What mmevit's command-line tools share (``tools/*.py``, shipped in the
wheel for ``mim train/test``, and ``tools/analysis_tools``, ``tools/data``
in the repository): one-line errors and argument types, the config changes
the tools make, CPU distributed runs, data-error reports, the work-dir lock,
the config-to-model builder, the measuring code
(:mod:`mmevit.tools.benchmark`), the backbone ONNX export and the synthetic
data sets (:mod:`mmevit.tools.toy_shapes`). The tools import only from here,
so that each runs as a file from the repository root.

The model library (models, checkpoint, engine, deploy) never imports this
package (tests/test_import_graph.py)."""
from .cli import exit_on_user_error, image_shape
from .config_options import merge_cfg_options, replace_sync_bn, use_safe_checkpoint_hook
from .data_errors import explain_data_errors
from .distributed import end_distributed, prepare_cpu_distributed
from .model_building import build_model, data_samples, load_config
from .model_checks import check_model_channels
from .work_dir_lock import exclusive_work_dir

__all__ = [
    'exit_on_user_error', 'image_shape', 'merge_cfg_options',
    'replace_sync_bn', 'use_safe_checkpoint_hook', 'explain_data_errors',
    'end_distributed', 'prepare_cpu_distributed', 'build_model', 'data_samples', 'load_config',
    'check_model_channels', 'exclusive_work_dir'
]
