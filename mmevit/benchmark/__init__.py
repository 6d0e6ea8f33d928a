"""Measuring and exporting EfficientViT: latency, FLOPs, ONNX.

The tools ``tools/benchmark.py``, ``tools/get_flops.py`` and
``tools/export_onnx.py`` are thin command lines over these modules.
"""
from .errors import BenchmarkInputError
from .flops import count_flops, count_parameters
from .reference_compare import build_variants, max_relative_difference
from .timing import interleaved_latencies, summarize

__all__ = ['BenchmarkInputError', 'count_flops', 'count_parameters',
           'build_variants', 'max_relative_difference',
           'interleaved_latencies', 'summarize']
