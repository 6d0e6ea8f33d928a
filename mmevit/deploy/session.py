"""An onnxruntime session of an exported file, with the file's contract
(input/output names, metadata) checked. Imports neither mmdet nor mmseg."""
import json
import os.path as osp

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from .contract import (
    IMAGE_SIZE_NAME,
    INPUT_NAME,
    METADATA_KEYS,
    SCALE_FACTOR_NAME,
    TASK_INPUTS,
    TASK_OUTPUTS,
)

#: The execution providers a session gets when the user names none.
DEFAULT_PROVIDERS = ('CPUExecutionProvider', )


class OnnxSession:
    """An onnxruntime session of an mmevit ONNX file for one task.

    Args:
        path (str): The ``.onnx`` file.
        task (str): ``'mmdet'`` or ``'mmseg'``, the config's task.
        num_threads (int): onnxruntime intra-op threads; 0 lets it choose.
        providers (Sequence[str], optional): onnxruntime execution
            providers by preference, e.g. ``['CUDAExecutionProvider',
            'CPUExecutionProvider']``; each must be one of
            ``onnxruntime.get_available_providers()``. Defaults to
            :data:`DEFAULT_PROVIDERS`.
        spinning (bool): Whether idle intra-op threads busy-wait for the
            next run (onnxruntime's default). Off here: they took the cores
            of the PyTorch pre- and post-processing between two runs
            (docs/benchmarks.md, "int8 and bf16").

    Raises:
        CheckpointError: The file is not an ONNX model onnxruntime loads
            (random bytes, truncated).
        ConfigError: The file's inputs/outputs are not those of ``task``,
            or a provider is not available.
    """

    def __init__(self, path, task, num_threads=0, providers=None,
                 spinning=False):
        self.task = task
        self.session = load_session(path, num_threads, providers, spinning)
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        _check_names(path, task, 'outputs', self.output_names,
                     TASK_OUTPUTS[task])
        _check_names(path, task, 'inputs', self.input_names,
                     TASK_INPUTS[task])
        meta = self.session.get_modelmeta().custom_metadata_map
        num_classes = meta.get(METADATA_KEYS['num_classes'])
        #: int | None: The exported model's number of classes (None in a
        #: file without the metadata).
        self.num_classes = None if num_classes is None else int(num_classes)
        self.dataset_meta = json.loads(
            meta.get(METADATA_KEYS['dataset_meta'], '{}'))
        #: str: ``'fp32'``, or ``'int8'`` for a quantized file.
        self.precision = meta.get(METADATA_KEYS['precision'], 'fp32')
        #: int | None: The stride of ``masks`` that are logits over the
        #: whole input (RTMDet-Ins); None for maps inside boxes.
        self.mask_stride = int(meta.get(METADATA_KEYS['mask_stride'], 0)) or None
        # As mmdet/mmseg datasets have them: a tuple of class names and a
        # list of colour tuples (JSON made lists of both).
        if 'classes' in self.dataset_meta:
            self.dataset_meta['classes'] = tuple(self.dataset_meta['classes'])
        if 'palette' in self.dataset_meta:
            self.dataset_meta['palette'] = [
                tuple(colour) for colour in self.dataset_meta['palette']]

    def __call__(self, inputs, image_size=None, scale_factor=None):
        """Run on a float tensor batch; returns the outputs as tensors.

        Args: as :meth:`feeds`.
        """
        arrays = self.session.run(
            None, self.feeds(inputs, image_size, scale_factor))
        return [torch.from_numpy(array) for array in arrays]

    def feeds(self, inputs, image_size=None, scale_factor=None):
        """The file's named input arrays for a float tensor batch.

        Args:
            inputs (Tensor): (N, 3, H, W) normalised, padded images.
            image_size (Sequence, optional): A detector's (height, width)
                of each image without the padding (``img_shape``).
                Defaults to the whole tensor.
            scale_factor (Sequence, optional): A detector's (width, height)
                resize factor of each image (mmdet's ``scale_factor``), for
                a file with a ``scale_factor`` input. Defaults to ones.
        """
        feeds = {INPUT_NAME: inputs.detach().float().cpu().numpy()}
        if IMAGE_SIZE_NAME in self.input_names:
            if image_size is None:
                image_size = [inputs.shape[2:]] * len(inputs)
            feeds[IMAGE_SIZE_NAME] = np.array(
                [[int(h), int(w)] for h, w in image_size], dtype=np.int64)
        if SCALE_FACTOR_NAME in self.input_names:
            if scale_factor is None:
                scale_factor = [(1., 1.)] * len(inputs)
            feeds[SCALE_FACTOR_NAME] = np.array(
                [[float(w), float(h)] for w, h in scale_factor],
                dtype=np.float64)  # mmdet rescales in double precision
        return feeds


def check_providers(providers):
    """``providers`` as a list (:data:`DEFAULT_PROVIDERS` for None).

    Raises:
        ConfigError: One of them is not in
            ``onnxruntime.get_available_providers()``.
    """
    import onnxruntime as ort
    if providers is None:
        return list(DEFAULT_PROVIDERS)
    available = ort.get_available_providers()
    for name in providers:
        if name not in available:
            raise ConfigError(
                f'onnxruntime execution provider {name!r} is not available; '
                f'this onnxruntime has {", ".join(available)}')
    return list(providers)


def load_session(path, num_threads=0, providers=None, spinning=False):
    """An onnxruntime session of ``path`` on ``providers`` (arguments as
    :class:`OnnxSession`'s).

    Raises:
        FileNotFoundError: There is no such file.
        CheckpointError: onnxruntime cannot load it (not an ONNX model,
            truncated).
        ConfigError: A provider is not available.
    """
    import onnxruntime as ort
    providers = check_providers(providers)
    if not osp.isfile(path):
        raise FileNotFoundError(f'ONNX file not found: {path}')
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '0')
    try:
        return ort.InferenceSession(path, options, providers=providers)
    except Exception as err:  # onnxruntime's InvalidProtobuf, Fail, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else \
            type(err).__name__
        raise CheckpointError(
            f'{path} is not an ONNX model that onnxruntime can load (not '
            f'from tools/deploy.py, or truncated): {reason}') from None


def _check_names(path, task, kind, names, choices):
    """Raise a ConfigError when the file's input or output ``names`` are
    none of the ``choices`` of a ``task`` config."""
    if names in choices:
        return
    wanted = ' or '.join(str(list(choice)) for choice in choices)
    raise ConfigError(
        f'{path} has {kind} {list(names)}; a {task} config needs {kind} '
        f'{wanted} (export it from this config with tools/deploy.py)')
