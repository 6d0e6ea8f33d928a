"""Whole-model ONNX deployment: export (``tools/deploy.py``), onnxruntime
models for the test loop and inference on images.

Importing this package imports neither mmdet nor mmseg and registers
nothing: the names of :data:`_LAZY` are imported when first read, so
``OnnxDetector``/``OnnxSegmentor`` register in their codebase only when a
file of that task runs, and running a file needs neither ``torch.onnx``,
the exporter's custom ops nor its newer torch (:data:`mmevit.stack.EXPORT_MIN_TORCH`)."""
import importlib

from ..models.bn_folding import fold_batch_norm
from .runtime import inference_onnx, init_onnx_model, onnx_model_cfg, use_onnx_file

#: Names imported on first use, and their modules.
_LAZY = {'export_onnx': '.export', 'export_wrapper': '.export',
         'OnnxDetector': '.onnx_detector', 'OnnxSegmentor': '.onnx_segmentor'}

__all__ = [*_LAZY, 'fold_batch_norm', 'inference_onnx', 'init_onnx_model',
           'onnx_model_cfg', 'use_onnx_file']


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
