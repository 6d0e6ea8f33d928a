"""``OnnxSegmentor``: an exported mmseg segmentor in onnxruntime,
registered in mmseg's model registry when this module is imported (by
:func:`.runtime.onnx_model_cfg` for an mmseg config; mmevit imports no
mmdet module for it)."""
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from torch import nn

from .session import OnnxSession


class DecodeHeadFacts(nn.Module):
    """What the test loop reads from a decode head, without its layers."""

    def __init__(self, num_classes, ignore_index, threshold, align_corners):
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.align_corners = align_corners


@MODELS.register_module()
class OnnxSegmentor(BaseSegmentor):
    """An exported segmentor in onnxruntime (predict mode only).

    Args:
        onnx_file (str): The ``.onnx`` file from ``tools/deploy.py``.
        decode_head (dict): ``num_classes``, ``ignore_index``,
            ``threshold`` and ``align_corners`` of the config's decode head
            (for the resize to the original image and the data checks).
        data_preprocessor (dict): The config's data preprocessor.
        providers (Sequence[str], optional): onnxruntime execution
            providers, see :class:`.session.OnnxSession`.
    """

    def __init__(self, onnx_file, decode_head, data_preprocessor=None,
                 providers=None, init_cfg=None):
        super().__init__(data_preprocessor, init_cfg)
        self.session = OnnxSession(onnx_file, 'mmseg', providers=providers)
        self.decode_head = DecodeHeadFacts(**decode_head)
        self.align_corners = self.decode_head.align_corners

    def predict(self, inputs, data_samples=None):
        seg_logits = self.session(inputs)[0]
        if data_samples is None:
            return [PixelData(data=logits.argmax(0, keepdim=True))
                    for logits in seg_logits]
        return self.postprocess_result(seg_logits, data_samples)

    def _forward(self, inputs, data_samples=None):
        return self.session(inputs)[0]

    def encode_decode(self, inputs, batch_data_samples):
        return self._forward(inputs)

    def loss(self, inputs, data_samples):
        raise NotImplementedError('an ONNX model cannot be trained')

    def extract_feat(self, inputs):
        raise NotImplementedError('the ONNX file ends with predictions')
