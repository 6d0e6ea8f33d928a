"""Mixed-precision inference: ``--bf16`` and ``--fp16`` of ``tools/test.py``
and ``tools/demo.py``.

The network (feature extractor and head layers) runs under
``torch.autocast``; its outputs are cast back to float32, so that
post-processing (priors, box decoding, NMS, mask paste, resizes) runs in
float32 as in an fp32 run. mmengine's ``TestLoop(fp16=True)`` puts the whole
``test_step`` under autocast (bfloat16 on the CPU): mmdet's RetinaNet
post-processing then fails (``expected scalar type Float but found
BFloat16``, mmengine 0.10.7), and bfloat16 priors would put box
coordinates near 600 on a 4-pixel grid.
"""
import functools

import torch

from ..errors import ConfigError

#: Option name -> autocast dtype.
DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
#: The network's parts in mmdet and mmseg models: a method of the model,
#: or a head module (run by its ``forward``).
NETWORK_PARTS = ('extract_feat', 'bbox_head', 'rpn_head', 'roi_head.bbox_head',
                 'roi_head.mask_head', 'decode_head')


def check_precision(precision, device):
    """Raise a one-line error when ``precision`` cannot run on ``device``
    (fp16 autocast is CUDA only)."""
    if precision == 'fp16' and torch.device(device).type != 'cuda':
        raise ConfigError(f'--fp16 runs on CUDA only (this run is on '
                          f'{device}); use --bf16 on the CPU')


def check_precision_args(checkpoint, precision, device):
    """One-line errors for ``--bf16``/``--fp16`` of a tool where they cannot
    apply: an ``.onnx`` checkpoint, or fp16 off CUDA."""
    if checkpoint.endswith('.onnx'):
        raise ConfigError(f'--{precision} applies to PyTorch checkpoints; '
                          f'{checkpoint} runs in its own precision '
                          '(tools/deploy.py --quantize int8 makes an int8 '
                          'file)')
    check_precision(precision, device)


def autocast_network(model, precision):
    """Run ``model``'s network parts in ``precision`` (in place).

    Args:
        model (nn.Module): An mmdet detector or mmseg segmentor.
        precision (str): ``'bf16'`` or ``'fp16'``.

    Returns:
        nn.Module: ``model``.
    """
    check_precision(precision, next(model.parameters()).device)
    device_type = next(model.parameters()).device.type
    for path in NETWORK_PARTS:
        owner, _, name = path.rpartition('.')
        parent = _attribute(model, owner)
        part = getattr(parent, name, None) if parent is not None else None
        if part is None:
            continue
        if isinstance(part, torch.nn.Module):
            parent, name = part, 'forward'
        setattr(parent, name, _autocast_call(getattr(parent, name),
                                             device_type, DTYPES[precision]))
    return model


def _attribute(model, path):
    for name in filter(None, path.split('.')):
        model = getattr(model, name, None)
    return model


def _autocast_call(fn, device_type, dtype):

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return _to_float32(fn(*args, **kwargs))

    return run


def _to_float32(outputs):
    """``outputs`` (tensors in tuples, lists, dicts) with reduced-precision
    floating tensors cast to float32."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.dtype in (
            torch.bfloat16, torch.float16) else outputs
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_to_float32(item) for item in outputs)
    if isinstance(outputs, dict):
        return {key: _to_float32(value) for key, value in outputs.items()}
    return outputs
