"""Whole-model ONNX deployment: export (``tools/deploy.py``), onnxruntime
models for the test loop (registered as ``OnnxDetector`` in mmdet and
``OnnxSegmentor`` in mmseg on import), and inference on images.

The exporter's functions are imported on first use: running an existing
file needs neither ``torch.onnx`` nor the exporter's custom ops, nor the
newer torch the exporter needs (:data:`mmevit.stack.EXPORT_MIN_TORCH`)."""
from ..models.bn_folding import fold_batch_norm
from .runtime import OnnxDetector, OnnxSegmentor, inference_onnx, init_onnx_model, onnx_model_cfg

_EXPORT_NAMES = ('export_onnx', 'export_wrapper')

__all__ = [*_EXPORT_NAMES, 'fold_batch_norm', 'OnnxDetector', 'OnnxSegmentor', 'inference_onnx',
           'init_onnx_model', 'onnx_model_cfg']


def __getattr__(name):
    if name in _EXPORT_NAMES:
        from . import export
        return getattr(export, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
