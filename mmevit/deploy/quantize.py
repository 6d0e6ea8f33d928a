"""Static INT8 quantization of an exported file with onnxruntime (QDQ).

Convolutions and matrix products (``Conv``, ``MatMul``, ``Gemm``) of
backbone, neck and heads, the heads' last layers included, get int8
weights (one scale per output channel) and uint8 activations calibrated
(min/max) on images, the format onnxruntime's CPU kernels run fastest; a
``Relu`` after them is folded into the uint8 range. Everything after the
heads' outputs stays in float: sigmoid/softmax, box decoding, NMS,
RoIAlign, the resizes of masks and logits.

The graph first goes through onnxruntime's basic (portable) optimizations,
the optimization step of ``quant_pre_process``, which fold the scales and
index arithmetic between layers into them; its symbolic shape inference,
which fails on dynamic sizes and ``NonMaxSuppression``, is not run, so the
file keeps its dynamic axes.
Running a file needs none of this module.
"""
import contextlib
import logging
import os
import os.path as osp
from collections import Counter

import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

from .contract import METADATA_KEYS

#: The node types computed in int8.
QUANTIZED_OP_TYPES = ('Conv', 'MatMul', 'Gemm', 'Relu')
_QDQ = ('QuantizeLinear', 'DequantizeLinear')


class _CalibrationData:
    """onnxruntime's calibration data reader over a sequence of feeds."""

    def __init__(self, feeds):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)


def quantize_int8(fp32_file, out, feeds, metadata):
    """Write the int8 (QDQ) version of ``fp32_file`` to ``out`` atomically.

    Args:
        fp32_file (str): An fp32 file from ``tools/deploy.py``.
        out (str): The int8 file; a failed run leaves nothing there.
        feeds (Iterable[dict]): Calibration inputs, one dict of the file's
            input names to arrays per batch (``OnnxSession.feeds``).
        metadata (dict): The fp32 file's metadata, stored in ``out`` with
            its precision set to ``int8``.

    Returns:
        tuple[Counter, Counter]: The nodes computed in int8 and the nodes
        kept in float, counted by op type.
    """
    partial = f'{out}.partial'
    optimized = f'{out}.fp32-optimized'
    try:
        optimize_fp32(fp32_file, optimized)
        with _quiet_root_logger():  # its advice to run quant_pre_process
            quantize_static(
                optimized, partial, _CalibrationData(feeds),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax)
        model = onnx.load(partial)
        del model.metadata_props[:]
        onnx.helper.set_model_props(
            model, {**metadata, METADATA_KEYS['precision']: 'int8'})
        onnx.save(model, partial)
        os.replace(partial, out)
    finally:
        for leftover in (partial, optimized):
            if osp.exists(leftover):
                os.remove(leftover)
    return count_nodes(model.graph)


def optimize_fp32(fp32_file, out):
    """Write ``fp32_file`` after onnxruntime's basic graph optimizations
    (standard ONNX nodes only, valid on any machine) to ``out``."""
    options = ort.SessionOptions()
    options.graph_optimization_level = \
        ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = out
    ort.InferenceSession(fp32_file, options,
                         providers=['CPUExecutionProvider'])


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer warns through the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def count_nodes(graph):
    """The nodes of a QDQ ``graph`` computed in int8 (their first input
    comes from a ``DequantizeLinear``) and those kept in float, by op type
    (quantize/dequantize nodes are not counted)."""
    dequantized = {output for node in graph.node
                   if node.op_type == 'DequantizeLinear'
                   for output in node.output}
    int8, float_ = Counter(), Counter()
    for node in graph.node:
        if node.op_type in _QDQ:
            continue
        quantized = node.op_type in QUANTIZED_OP_TYPES and \
            node.input[0] in dequantized
        (int8 if quantized else float_)[node.op_type] += 1
    return int8, float_
