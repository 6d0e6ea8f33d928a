"""Helpers of the deploy tests (test_deploy, test_deploy_mask_rcnn,
test_quantize): seeded toy models exported as tools/deploy.py does, and the
checks of a file against its PyTorch model."""
import copy

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from mmevit.tools import build_model
from tests.helpers import load_tool

# Traced at 160x192 (the stride-128 level 2x2: a size-1 level would be
# specialised by torch.export); none of the check sizes is the traced one,
# (131, 97) and (100, 150) need window padding in every stage, batch 2 is
# not the traced batch either.
TRACED = (160, 192)

# Fewer proposals and detections than the config (1000, 100) for test time.
MASK_TEST_CFG = {'model.test_cfg.rpn.max_per_img': 300,
                 'model.test_cfg.rcnn.max_per_img': 30}

DEPLOY = load_tool('deploy')


def save_checkpoint(model, path, cfg):
    meta = dict(cfg.test_dataloader.dataset.metainfo)
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': meta}}, path)
    return str(path)


def deploy(config, checkpoint, out, *extra):
    DEPLOY.main([config, checkpoint, '--out', str(out), '--shape',
                 f'{TRACED[0]}x{TRACED[1]}', *extra])
    return str(out)


def exported_toy(config, options, work, adjust=None, export_options=None):
    """The toy model of ``config`` with seeded initial weights (changed by
    ``adjust``), its checkpoint in ``work`` and its export traced at
    TRACED: a dict of ``cfg``, ``model`` (eval), ``checkpoint``, ``onnx``
    and ``work``."""
    torch.manual_seed(0)
    cfg, _, model = build_model(config, options)
    model.init_weights()
    if adjust is not None:
        adjust(model)
    checkpoint = save_checkpoint(model, work / 'model.pth', cfg)
    extra = ['--cfg-options', *[f'{key}={value}' for key, value
                                in export_options.items()]] if export_options else []
    onnx_file = deploy(config, checkpoint, work / 'model.onnx', *extra)
    return dict(cfg=cfg, model=model.eval(), checkpoint=checkpoint,
                onnx=onnx_file, work=work)


def spread_logits(model, classifiers, std=2.):
    """Scale the ``classifiers`` (convolutions) of ``model`` so that their
    logits on random images have the standard deviation ``std`` around 0:
    scores spread over (0, 1), without the exact ties of saturated
    sigmoids, and whether an image has many detections above a high
    threshold or none depends on its content."""
    outputs = []
    hooks = [layer.register_forward_hook(
        lambda module, args, output: outputs.append(output))
        for layer in classifiers]
    with torch.no_grad():
        model.eval()._forward(torch.randn(2, 3, 128, 160,
                                          generator=torch.Generator(
                                          ).manual_seed(0)))
        for hook in hooks:
            hook.remove()
        scale = std / torch.cat([out.flatten() for out in outputs]).std()
        for layer in classifiers:
            layer.weight.mul_(scale)
            layer.bias.zero_()


# (batch, height, width) of the direct file checks (see TRACED).
CHECK_SHAPES = [(1, 96, 160), (1, 131, 97), (2, 100, 150)]


def samples(cls, batch, height, width, padded=False):
    """Data samples of a (batch, 3, height, width) tensor. With ``padded``,
    every image after the first is smaller than the tensor: its bottom and
    right are batch padding, to which no box may reach."""
    result = []
    for index in range(batch):
        shape = (height - 9 * index, width - 17 * index) if padded else (
            height, width)
        result.append(cls(metainfo=dict(
            img_shape=shape, ori_shape=shape, pad_shape=(height, width),
            batch_input_shape=(height, width), scale_factor=(1., 1.))))
    return result


def mask_iou(a, b):
    """Per-mask IoU of two (D, H, W) bool stacks (1 where both are empty)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), 1.)


# Differential, property-based checks of the export contract. The file-level
# tests draw images, sizes, resizes and batches against the module's
# exported files (an export costs ~50 s, so the thresholds baked into a file
# are the fixture's). The wrapper-level tests run the module that is
# exported (the same code, mmevit's custom ops in PyTorch) and draw the
# test_cfg thresholds too, with max_per_img set from PyTorch's own count so
# that each example has 0, fewer than K, exactly K or more than K
# detections.
DRAW = settings(max_examples=5, deadline=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow])


def pipeline_batch(cfg, model, images, scale, keep_ratio):
    """``images`` (uint8 BGR arrays or :func:`make_image` arguments)
    through ``cfg``'s test pipeline with its ``Resize`` to ``scale``
    (``keep_ratio``), collated and padded by ``model``'s data
    preprocessor: ``(inputs, data_samples)``."""
    from mmengine.dataset import Compose, pseudo_collate
    images = [make_image(*image) if isinstance(image, tuple) else image
              for image in images]
    steps = []
    for step in cfg.test_dataloader.dataset.pipeline:
        # inference_detector may have renamed the loader in the config
        name = step['type'].rpartition('.')[2]
        if name == 'LoadAnnotations':
            continue
        step = dict(step, type=f'{cfg.default_scope}.' + name.replace(
            'LoadImageFromFile', 'LoadImageFromNDArray'))
        if name == 'Resize':
            step.update(scale=scale, keep_ratio=keep_ratio)
        steps.append(step)
    pipeline = Compose(steps)
    data = pseudo_collate([pipeline(dict(img=image, img_id=index))
                           for index, image in enumerate(images)])
    batch = model.data_preprocessor(data, False)
    return batch['inputs'], batch['data_samples']


def image_batches(max_side=400):
    """1-3 random images of drawn sizes and aspect ratios, grey level and
    contrast (which move the scores), each as ``(seed, height, width,
    mean, spread)``, and the pipeline's resize: a drawn scale, with or
    without keeping the ratio."""
    side = st.integers(24, max_side)
    image = st.tuples(st.integers(0, 2**16), side, side, st.integers(0, 255),
                      st.integers(0, 255))
    scale = st.tuples(st.integers(64, 352), st.integers(64, 352))
    return st.tuples(st.lists(image, min_size=1, max_size=3), scale,
                     st.booleans())


def make_image(seed, height, width, mean, spread):
    """A uint8 BGR noise image of ``mean`` grey level and ``spread``."""
    noise = np.random.default_rng(seed).random((height, width, 3)) - 0.5
    return np.clip(mean + spread * noise, 0, 255).astype(np.uint8)


def assert_padding_contract(dets, labels, count):
    """Rows ``count:`` of one image's raw ``dets``/``labels`` are padding
    (all zeros, label -1) and rows ``:count`` are detections (label >= 0,
    scores > 0, by decreasing score)."""
    assert (labels[:count] >= 0).all() and (labels[count:] == -1).all()
    assert (dets[count:] == 0).all()
    assert (dets[:count, 4] > 0).all()
    assert (dets[1:count, 4] <= dets[:max(count - 1, 0), 4]).all()


def by_score(boxes, scores, labels):
    """The rows by decreasing score (to 1e-5), equal scores by label and
    box: equal-scoring detections (identical features, e.g. in padding)
    may come in either order."""
    order = np.lexsort((*boxes.numpy().T[::-1], labels.numpy(),
                        -np.round(scores.numpy(), 5)))
    order = torch.from_numpy(order)
    return boxes[order], scores[order], labels[order]


def assert_same_rows(dets, labels, sample, box_tolerance):
    """Raw ``dets``/``labels`` rows (input pixels) are ``sample``'s
    predicted instances (original pixels); box tolerance relative to the
    original image's longer side. Names the first differing row."""
    reference = sample.pred_instances
    boxes = dets[:, :4] / dets.new_tensor(sample.scale_factor).repeat(2)
    boxes, scores, labels = by_score(boxes, dets[:, 4], labels)
    ref_boxes, ref_scores, ref_labels = by_score(
        reference.bboxes, reference.scores, reference.labels)
    differ = (labels != ref_labels).nonzero()[:, 0]
    assert len(differ) == 0, (
        f'row {differ[0].item()}: label {labels[differ[0]].item()} score '
        f'{scores[differ[0]].item()}; predict: label '
        f'{ref_labels[differ[0]].item()} score '
        f'{ref_scores[differ[0]].item()}')
    torch.testing.assert_close(boxes, ref_boxes, rtol=0,
                               atol=box_tolerance * max(sample.ori_shape))
    torch.testing.assert_close(scores, ref_scores, rtol=0, atol=1e-5)


def check_file_against_pytorch(toy, images, scale, keep_ratio):
    """The toy's file (in ``OnnxDetector``) against its PyTorch model on a
    batch through the test pipeline: the raw rows obey the padding contract
    and ``predict`` gives PyTorch's detections. Returns the counts."""
    model, onnx_model = toy['model'], toy['onnx_model']
    inputs, data_samples = pipeline_batch(toy['cfg'], model, images, scale,
                                          keep_ratio)
    with torch.no_grad():
        expected = model.predict(inputs, copy.deepcopy(data_samples))
    actual = onnx_model.predict(inputs, copy.deepcopy(data_samples))
    dets, labels, *_ = onnx_model._forward(inputs, data_samples)
    counts = []
    for index, (result, reference) in enumerate(zip(actual, expected)):
        count = len(reference.pred_instances)
        assert_padding_contract(dets[index], labels[index], count)
        assert_same_rows(dets[index, :count], labels[index, :count],
                         reference, 2e-3)
        assert len(result.pred_instances) == count
        counts.append(count)
    return counts
