"""Whole-model ONNX deployment: export (``tools/deploy.py``), onnxruntime
models for the test loop (registered as ``OnnxDetector`` in mmdet and
``OnnxSegmentor`` in mmseg on import), and inference on images."""
from .export import build_model, export_onnx, export_wrapper, fold_batch_norm
from .runtime import OnnxDetector, OnnxSegmentor, inference_onnx, init_onnx_model, onnx_model_cfg

__all__ = ['build_model', 'export_onnx', 'export_wrapper', 'fold_batch_norm',
           'OnnxDetector', 'OnnxSegmentor', 'inference_onnx',
           'init_onnx_model', 'onnx_model_cfg']
