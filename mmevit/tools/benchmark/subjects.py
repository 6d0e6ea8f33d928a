"""The models a benchmark times, and what runs of each.

A *subject* is one model: an arch's bare backbone or a config's detector or
segmentor (any mmdet/mmseg model: RetinaNet, Mask R-CNN, RTMDet, RTMDet-Ins,
Semantic FPN ...), with seeded random weights and BN statistics gathered on
random images, so that activations, int8 calibration and the
post-processing load have realistic ranges. A *part* is what is timed:

- ``backbone``: the backbone alone (the only part of an arch);
- ``backbone+neck``: ``extract_feat``;
- ``network``: the whole network in tensor mode (no post-processing);
- ``model``: ``predict``, image to predictions, post-processing included.

A *path* is how it runs:

- ``eager-fp32``; ``eager-bf16``: under ``torch.autocast`` (for ``model``
  the network under autocast and post-processing in fp32, as
  ``tools/test.py --bf16`` runs it);
- ``ort-fp32``, ``ort-int8``: an ONNX file in onnxruntime with dynamic batch
  and size; ``model`` exported as ``tools/deploy.py`` does and run through
  mmevit's ``OnnxDetector``/``OnnxSegmentor``, int8 quantized as
  ``tools/deploy.py --quantize int8`` does, calibrated on random images
  (speed only: the accuracy of an int8 file is measured with
  ``tools/test.py``). ``network`` has no ONNX path: the whole-model file
  includes post-processing.
"""
import copy
import logging
import os.path as osp

import torch
from mmengine.logging import MMLogger
from torch import nn

from mmevit.errors import ConfigError
from mmevit.models import fold_batch_norm
from mmevit.tools.benchmark.models import build_backbone
from mmevit.tools.model_building import build_model, data_samples
from mmevit.tools.precision import autocast_network

PARTS = ('backbone', 'backbone+neck', 'network', 'model')
PATHS = ('eager-fp32', 'eager-bf16', 'ort-fp32', 'ort-int8')


def gather_bn_statistics(model, forward, inputs):
    """BN running statistics of ``model`` from one train-mode ``forward``
    of ``inputs`` (cumulative average), then eval mode."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        forward(inputs)
    return model.eval()


def initialise_quietly(model):
    """``model.init_weights()`` without mmengine's per-parameter log lines
    (random weights for timing: nobody reads them)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def _under_autocast(fn):
    """``fn(x)`` under bf16 autocast on ``x``'s device."""

    def run(x):
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return fn(x)

    return run


class Subject:
    """One model to time: the callables of its parts on each path.

    Args:
        name (str): Row label.
        model (nn.Module): Backbone, detector or segmentor (eval mode).
        task (str, optional): ``'mmdet'``, ``'mmseg'``, or None for a bare
            backbone. Defaults to None.
        cfg (Config, optional): The config of a detector or segmentor.
            Defaults to None.
    """

    def __init__(self, name, model, task=None, cfg=None):
        self.name, self.model, self.task, self.cfg = name, model, task, cfg
        self._files = {}

    def parts(self, requested):
        """The requested parts this subject has (an arch: ``backbone``)."""
        return ['backbone'] if self.task is None else list(requested)

    def module(self, part):
        """The module whose parameters ``part`` runs."""
        if self.task is None:
            return self.model
        if part == 'backbone':
            return self.model.backbone
        if part == 'backbone+neck':
            return nn.ModuleList([self.model.backbone, self.model.neck])
        return self.model

    def eager(self, part):
        """``part`` as a callable on an image batch, in fp32."""
        if self.task is None:
            return self.model
        model = self.model
        return {
            'backbone': model.backbone,
            'backbone+neck': model.extract_feat,
            'network': lambda x: model(x, self.samples(x), mode='tensor'),
            'model': lambda x: model.predict(x, self.samples(x)),
        }[part]

    def features(self, part):
        """Image -> feature maps of ``part`` (its coarsest stride bounds the
        input size)."""
        if self.task is None or part == 'backbone':
            return self.eager('backbone')
        return self.model.extract_feat

    def has_path(self, part, path):
        """Whether ``part`` runs on ``path`` (``network`` has no file)."""
        return not (part == 'network' and path.startswith('ort'))

    def timed(self, part, path, x, threads, work_dir, calib_images=2,
              seed=0):
        """A no-argument callable running ``part`` on ``x`` on ``path``.

        Args:
            part (str): One of :data:`PARTS`.
            path (str): One of :data:`PATHS`.
            x (Tensor): The timed batch.
            threads (int): onnxruntime's intra-op threads (0: its default).
            work_dir (str): Where the ONNX files are written.
            calib_images (int): Random calibration batches of the int8 file.
                Defaults to 2.
            seed (int): Seed of the calibration batches. Defaults to 0.
        """
        if path == 'eager-fp32':
            fn = self.eager(part)
            return lambda: fn(x)
        if path == 'eager-bf16':
            if part != 'model':
                fn = _under_autocast(self.eager(part))
                return lambda: fn(x)
            # a copy of the model as it is now (score_thr included)
            bf16 = autocast_network(copy.deepcopy(self.model), 'bf16')
            samples = self.samples(x)
            return lambda: bf16.predict(x, samples)
        if x.device.type != 'cpu':
            raise ConfigError(f'{path} runs on the CPU; drop it or use '
                              '--device cpu')
        file = self._file(part, path, x, work_dir, calib_images, seed)
        return self._onnx_callable(part, file, x, threads)

    def samples(self, x):
        """Meta information of the images of ``x`` for ``predict``."""
        return data_samples(self.task, *x.shape[2:], len(x))

    def _file(self, part, path, x, work_dir, calib_images, seed):
        """The fp32 or int8 file of ``part`` (exported once per input size
        and post-processing threshold)."""
        key = (part, tuple(x.shape[2:]), self._score_thr())
        stem = osp.join(work_dir, f'{self.name}_{part}_{len(self._files)}'
                        .replace('+', '_'))
        if (key, 'ort-fp32') not in self._files:
            self._files[(key, 'ort-fp32')] = self._export(
                part, f'{stem}_fp32.onnx', x)
        if (key, path) not in self._files:  # int8, quantized once
            self._files[(key, path)] = self._quantize(
                part, self._files[(key, 'ort-fp32')], f'{stem}_int8.onnx', x,
                calib_images, seed)
        return self._files[(key, path)]

    def _export(self, part, fp32, x):
        if part == 'model':
            from mmevit.deploy import export_onnx, export_wrapper
            export_onnx(export_wrapper(self.task, copy.deepcopy(self.model)),
                        fp32, self.task, tuple(x.shape[2:]))
            return fp32
        from mmevit.tools.backbone_onnx import BackboneWithNeck, export_backbone_onnx
        module = self.module(part) if part == 'backbone' else \
            BackboneWithNeck(self.model.backbone, self.model.neck)
        export_backbone_onnx(copy.deepcopy(module), fp32, *x.shape[2:])
        return fp32

    def _score_thr(self):
        head = getattr(self.model, 'bbox_head', None)
        test_cfg = getattr(head, 'test_cfg', None) or {}
        return test_cfg.get('score_thr')

    def _quantize(self, part, fp32, int8, x, calib_images, seed):
        import onnx

        from mmevit.deploy.quantize import quantize_int8
        gen = torch.Generator().manual_seed(seed + 1)
        batches = [torch.randn(x.shape, generator=gen)
                   for _ in range(calib_images)]
        if part == 'model':
            from mmevit.deploy.runtime import OnnxSession
            session = OnnxSession(fp32, self.task)
            feeds = [session.feeds(batch) for batch in batches]
        else:
            feeds = [{'input': batch.numpy()} for batch in batches]
        graph = onnx.load(fp32, load_external_data=False)
        metadata = {prop.key: prop.value for prop in graph.metadata_props}
        quantize_int8(fp32, int8, feeds, metadata)
        return int8

    def _onnx_callable(self, part, file, x, threads):
        if part != 'model':
            from mmevit.deploy.session import load_session
            session = load_session(file, threads)
            feed = {'input': x.numpy()}
            return lambda: session.run(None, feed)
        from mmevit.deploy.runtime import OnnxSession, init_onnx_model
        onnx_model = init_onnx_model(self.cfg, file)
        onnx_model.session = OnnxSession(file, self.task, threads)
        samples = self.samples(x)
        return lambda: onnx_model.predict(x, samples)


def arch_subject(arch, x, seed=0, deploy=False):
    """The bare backbone of ``arch`` (mmevit's initialisation, seeded; BN
    statistics of ``x``; BN folded with ``deploy``)."""
    torch.manual_seed(seed)
    model = build_backbone(arch)
    initialise_quietly(model)
    gather_bn_statistics(model, model, x)
    if deploy:
        fold_batch_norm(model)
    return Subject(f'EfficientViT-{arch.upper()}', model)


def config_subject(config, x, seed=0, deploy=False, cfg_options=None):
    """A config's model with seeded random weights (mmdet/mmseg's
    initialisation, no checkpoint loaded or downloaded), BN statistics
    gathered on ``x`` and BN folded with ``deploy``."""
    torch.manual_seed(seed)
    cfg, task, model = build_model(config, {
        'model.backbone.init_cfg': None, **(cfg_options or {})})
    initialise_quietly(model)
    samples = data_samples(task, *x.shape[2:], len(x))
    gather_bn_statistics(
        model, lambda inputs: model(inputs, samples, mode='tensor'), x)
    if deploy:
        fold_batch_norm(model)
    name = osp.splitext(osp.basename(config.split('::')[-1]))[0]
    return Subject(name, model, task, cfg)
