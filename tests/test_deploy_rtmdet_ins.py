"""Whole-model ONNX export of RTMDet-Ins (tools/deploy.py) against PyTorch
predict: detections and masks under drawn inputs and thresholds, in the test
loop, the demo and int8 (a file of its own: its export runs beside the
other deploy tests' on another xdist worker)."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from hypothesis import assume, event, given
from hypothesis import strategies as st

from tests.helpers import (
    ROOT,
    det_options,
    run_test_tool,
    run_tool_in_process,
    skip_module_without_exporter,
)

skip_module_without_exporter()

from mmevit.deploy import export_wrapper, inference_onnx, init_onnx_model  # noqa: E402
from mmevit.deploy.onnx_detector import image_masks  # noqa: E402
from tests.deploy_helpers import (  # noqa: E402
    DEPLOY,
    DRAW,
    assert_padding_contract,
    assert_same_rows,
    exported_toy,
    image_batches,
    mask_iou,
    pipeline_batch,
    spread_logits,
)
from tests.test_deploy import cut_is_determined, drawn_test_cfg, max_per_img_for  # noqa: E402

INS_TOY = osp.join(ROOT, 'configs/toy/rtmdet-ins_efficientvit_m0_toy.py')
# Fewer candidates and detections than the config (30000, 300) for test
# time; a threshold some images pass with fewer than K detections or none.
INS_TEST_CFG = {'model.test_cfg.nms_pre': 200, 'model.test_cfg.max_per_img': 100,
                'model.test_cfg.score_thr': 0.8}
MASK_THRESHOLDS = st.sampled_from([0.2, 0.5, 0.8])


def diamond_kernel(head, radius=0.4):
    """Dynamic-convolution parameters whose mask logit is
    ``4 * (radius - |dx| - |dy|)`` in the relative coordinates (prior
    minus pixel, in 8 strides of the prior's level): a mask around each
    detection's prior (weights: :meth:`RTMDetInsHead.parse_dynamic_params`)."""
    assert head.num_dyconvs == 3
    channels = head.dyconv_channels
    first = torch.zeros(channels, head.num_prototypes + 2)
    first[[0, 1, 2, 3], [0, 0, 1, 1]] = torch.tensor([1., -1., 1., -1.])
    last = torch.zeros(1, channels)
    last[0, :4] = -4.
    return torch.cat([first.flatten(), torch.eye(channels).flatten(), last.flatten(),
                      torch.zeros(2 * channels), torch.tensor([4. * radius])])


def make_predict(model):
    """Random weights that predict: classifier scores spread over (0, 1),
    and mask kernels that vary from prior to prior around the diamond of
    :func:`diamond_kernel` (segm AP above 0)."""
    head = model.bbox_head
    spread_logits(model, list(head.rtm_cls))
    spread_logits(model, list(head.rtm_kernel), std=0.3)
    with torch.no_grad():
        for layer in head.rtm_kernel:
            layer.bias.copy_(diamond_kernel(head))


@pytest.fixture(scope='module')
def rtmdet_ins(toy_coco, tmp_path_factory):
    """Toy RTMDet-Ins made to predict, its checkpoint, its export and the
    export as an mmdet model."""
    toy = exported_toy(INS_TOY, {**det_options(toy_coco), **INS_TEST_CFG},
                       tmp_path_factory.mktemp('rtmdet_ins_deploy'), make_predict,
                       export_options=INS_TEST_CFG)
    return dict(toy, onnx_model=init_onnx_model(toy['cfg'], toy['onnx']))


def assert_same_masks(result, reference):
    """Same masks (per-mask IoU >= 0.99: a pixel at the threshold may fall
    on either side) of the same shape and order."""
    assert torch.equal(result.labels, reference.labels)
    assert result.masks.shape == reference.masks.shape
    assert result.masks.dtype == torch.bool
    iou = mask_iou(result.masks, reference.masks)
    assert len(iou) == 0 or iou.min() >= 0.99, iou.min()


@DRAW
@given(batch=image_batches(max_side=200), mask_thr=MASK_THRESHOLDS)
def test_file_gives_predicts_detections_and_masks_through_the_pipeline(
        rtmdet_ins, batch, mask_thr):
    """The file in ``OnnxDetector`` against PyTorch predict on drawn images,
    resizes (ratio kept or not) and batches of 1-3, with a drawn
    ``mask_thr_binary``: rows, padding and masks of the original image."""
    model, onnx_model = rtmdet_ins['model'], rtmdet_ins['onnx_model']
    inputs, data_samples = pipeline_batch(rtmdet_ins['cfg'], model, *batch)
    model.bbox_head.test_cfg.mask_thr_binary = onnx_model.mask_thr_binary = mask_thr
    with torch.no_grad():
        expected = model.predict(inputs, copy.deepcopy(data_samples))
        *_, prototypes = model.bbox_head(model.extract_feat(inputs))
    actual = onnx_model.predict(inputs, copy.deepcopy(data_samples))
    dets, labels, masks = onnx_model._forward(inputs, data_samples)
    assert masks.shape[2:] == prototypes.shape[2:]  # the stride-8 level
    for index, (result, reference) in enumerate(zip(actual, expected)):
        count = len(reference.pred_instances)
        event('detections: ' + ('0' if count == 0 else 'K' if count == len(dets[index])
                                else '< K'))
        assert_padding_contract(dets[index], labels[index], count)
        assert (masks[index, count:] == 0).all()
        assert_same_rows(dets[index, :count], labels[index, :count], reference, 2e-3)
        assert_same_masks(result.pred_instances, reference.pred_instances)


@pytest.fixture(scope='module')
def free_model(rtmdet_ins):
    """A copy of the fixture's PyTorch model whose test_cfg the drawn tests
    change."""
    models = rtmdet_ins['cfg'], copy.deepcopy(rtmdet_ins['model'])
    return lambda: models  # a short repr in hypothesis' reports


@DRAW
@given(batch=image_batches(max_side=200), test=drawn_test_cfg(), mask_thr=MASK_THRESHOLDS)
def test_export_gives_predicts_instances_for_any_test_cfg(free_model, batch, test, mask_thr):
    """The exported module under drawn ``score_thr``, ``nms_pre``,
    ``min_bbox_size``, NMS IoU, ``mask_thr_binary`` and a K below, at or
    above the count: predict's detections, padding rows, and its masks."""
    cfg, model = free_model()
    inputs, data_samples = pipeline_batch(cfg, model, *batch)
    head_cfg = model.bbox_head.test_cfg
    # Off the round values: boxes clipped at the image border overlap by
    # exactly 0.5 (seen), where rounding decides whether NMS keeps them.
    head_cfg.nms.iou_threshold = test['iou'] + 0.05
    settings = dict(score_thr=1. if test['count'] == '0' else test['score_thr'],
                    nms_pre=test['nms_pre'], min_bbox_size=test['min_bbox_size'],
                    mask_thr_binary=mask_thr)
    head_cfg.update(settings, max_per_img=1000)
    with torch.no_grad():
        unlimited = model.predict(inputs, copy.deepcopy(data_samples))
    most = max(len(sample.pred_instances) for sample in unlimited)
    max_per_img = max_per_img_for(test['count'], most, test['extra'])
    assume(max_per_img is not None)
    assume(cut_is_determined(unlimited, max_per_img))
    head_cfg.max_per_img = max_per_img
    wrapper = export_wrapper('mmdet', model)
    with torch.no_grad():
        expected = model.predict(inputs, copy.deepcopy(data_samples))
        dets, labels, logits = wrapper(
            inputs, torch.tensor([s.img_shape for s in data_samples]),
            torch.tensor([s.scale_factor for s in data_samples], dtype=torch.float64))
    assert dets.shape == (len(inputs), max_per_img, 5)
    for det, label, logit, sample in zip(dets, labels, logits, expected):
        count = len(sample.pred_instances)
        assert_padding_contract(det, label, count)
        assert_same_rows(det[:count], label[:count], sample, 1e-3)
        result = copy.copy(sample.pred_instances)
        result.masks = image_masks(logit[:count], wrapper.mask_stride, mask_thr, sample)
        assert_same_masks(result, sample.pred_instances)


def test_tools_test_gives_the_checkpoints_bbox_and_segm_map(rtmdet_ins, toy_coco, tmp_path):
    options = {**det_options(toy_coco), **INS_TEST_CFG}
    eager = run_test_tool(INS_TOY, rtmdet_ins['checkpoint'], options, tmp_path / 'pth')
    onnx = run_test_tool(INS_TOY, rtmdet_ins['onnx'], options, tmp_path / 'onnx')
    assert eager['coco/bbox_mAP_50'] > 0 and eager['coco/segm_mAP_50'] > 0
    assert 'coco/segm_mAP' in onnx
    for name, value in eager.items():
        assert abs(onnx[name] - value) <= 0.002, (name, value, onnx[name])


def test_demo_draws_the_masks_of_inference(rtmdet_ins, toy_coco, tmp_path, monkeypatch):
    from mmdet.apis import inference_detector
    image = osp.join(toy_coco['val_img_dir'], '000002.jpg')
    out = tmp_path / 'demo.png'
    assert run_tool_in_process(monkeypatch, 'demo', image, INS_TOY, rtmdet_ins['onnx'],
                               '--out', out) == 0
    assert out.stat().st_size > 0
    eager, onnx_model = rtmdet_ins['model'], rtmdet_ins['onnx_model']
    eager.bbox_head.test_cfg.mask_thr_binary = onnx_model.mask_thr_binary = 0.5
    result = inference_onnx(onnx_model, image).pred_instances
    eager.cfg = rtmdet_ins['cfg']
    expected = inference_detector(eager, image).pred_instances
    assert result.masks.flatten(1).any(1).sum() >= 10  # masks to draw
    assert_same_masks(result, expected)


def test_int8_file_keeps_the_segm_map(rtmdet_ins, toy_coco, tmp_path):
    options = {**det_options(toy_coco), **INS_TEST_CFG}
    int8 = str(tmp_path / 'int8.onnx')
    DEPLOY.main([INS_TOY, rtmdet_ins['onnx'], '--out', int8, '--quantize', 'int8',
                 '--calib-images', '2', '--cfg-options',
                 *[f'{k}={v}' for k, v in options.items()]])
    fp32 = run_test_tool(INS_TOY, rtmdet_ins['onnx'], options, tmp_path / 'fp32')
    quantized = run_test_tool(INS_TOY, int8, options, tmp_path / 'int8')
    assert fp32['coco/segm_mAP_50'] > 0
    for name in ('coco/segm_mAP', 'coco/segm_mAP_50', 'coco/bbox_mAP'):
        assert abs(quantized[name] - fp32[name]) <= 0.01, (name, fp32, quantized)


def test_unsupported_nms_is_named(rtmdet_ins):
    from mmevit.errors import ConfigError
    model = copy.deepcopy(rtmdet_ins['model'])
    model.bbox_head.test_cfg.nms.type = 'soft_nms'
    with pytest.raises(ConfigError, match=r"cannot export RTMDetInsSepBNHead with "
                       r"test_cfg.nms.type='soft_nms'.* RTMDetInsHead, RTMDetInsSepBNHead "
                       r'\(RTMDet-Ins\)'):
        export_wrapper('mmdet', model)


def test_file_without_detections_gives_empty_masks(rtmdet_ins):
    """A flat grey image leaves no detection: K padding rows, no masks."""
    pixels = np.full((120, 150, 3), 128, np.uint8)
    model, onnx_model = rtmdet_ins['model'], rtmdet_ins['onnx_model']
    inputs, samples = pipeline_batch(rtmdet_ins['cfg'], model, [pixels], (320, 320), True)
    [result] = onnx_model.predict(inputs, samples)
    with torch.no_grad():
        [reference] = model.predict(inputs, copy.deepcopy(samples))
    assert len(reference.pred_instances) == 0
    assert result.pred_instances.masks.shape == reference.pred_instances.masks.shape
