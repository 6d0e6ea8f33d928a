"""Whole-model ONNX export (tools/deploy.py) against PyTorch predict, and
the exported files in the test loop, the demo and the inference API."""
import copy
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from mmdet.structures import DetDataSample
from mmseg.structures import SegDataSample
from torch import nn

from tests.helpers import (
    FPN_TOY,
    MASK_TOY,
    RETINA_TOY,
    ROOT,
    det_options,
    load_tool,
    make_toy_ade20k,
    run_test_tool,
    run_tool_in_process,
    seg_options,
    skip_module_without_exporter,
)

skip_module_without_exporter()

from mmevit.deploy import inference_onnx, init_onnx_model  # noqa: E402
from mmevit.deploy.runtime import OnnxSession  # noqa: E402
from mmevit.tools import build_model  # noqa: E402
from tests.deploy_helpers import (  # noqa: E402
    CHECK_SHAPES,
    DRAW,
    MASK_TEST_CFG,
    assert_padding_contract,
    assert_same_rows,
    check_file_against_pytorch,
    deploy,
    exported_toy,
    image_batches,
    pipeline_batch,
    samples,
    spread_logits,
)

# A score threshold that some images pass with fewer than K detections or
# none, and a min_bbox_size that differs between input and original pixels.
RETINA_TEST_CFG = {'model.test_cfg.score_thr': 0.93,
                   'model.test_cfg.min_bbox_size': 6,
                   'model.test_cfg.max_per_img': 100}
DEMO = load_tool('demo')


@pytest.fixture(scope='module')
def toy_ade20k(tmp_path_factory):
    return make_toy_ade20k(tmp_path_factory.mktemp('toy_ade20k_deploy'))


@pytest.fixture(scope='module')
def retinanet(toy_coco, tmp_path_factory):
    """Toy RetinaNet with random weights whose classifier scores spread
    over (0, 1) (every level fills nms_pre, NMS and top-k are busy), its
    checkpoint, its export (RETINA_TEST_CFG) and the export as an mmdet
    model."""
    def spread_scores(model):
        spread_logits(model, [model.bbox_head.retina_cls])

    toy = exported_toy(RETINA_TOY, {**det_options(toy_coco),
                                    **RETINA_TEST_CFG},
                       tmp_path_factory.mktemp('retinanet_deploy'),
                       spread_scores, export_options=RETINA_TEST_CFG)
    return dict(toy, onnx_model=init_onnx_model(toy['cfg'], toy['onnx']))


@pytest.fixture(scope='module')
def fpn(toy_ade20k, tmp_path_factory):
    """Toy Semantic FPN, random weights, its checkpoint and its export."""
    return exported_toy(FPN_TOY, seg_options(toy_ade20k),
                        tmp_path_factory.mktemp('fpn_deploy'))


@pytest.mark.parametrize('shape', CHECK_SHAPES, ids=str)
def test_segmentor_label_maps_match_pytorch(fpn, shape):
    session = OnnxSession(fpn['onnx'], 'mmseg')
    x = torch.randn(*shape[:1], 3, *shape[1:], generator=torch.Generator(
    ).manual_seed(1))
    with torch.no_grad():
        expected = fpn['model'].predict(x, samples(SegDataSample, *shape))
    [logits] = session(x)
    assert logits.shape == (shape[0], 4, *shape[1:])
    for sample, labels in zip(expected, logits.argmax(1)):
        reference = sample.pred_sem_seg.data[0]
        agreement = (reference == labels).float().mean().item()
        assert agreement >= 0.999, agreement
        assert len(reference.unique()) > 1  # a label map, not a constant


@pytest.mark.parametrize('shape', CHECK_SHAPES, ids=str)
def test_detector_boxes_match_pytorch(retinanet, shape):
    session = OnnxSession(retinanet['onnx'], 'mmdet')
    batch, height, width = shape
    x = torch.randn(batch, 3, height, width,
                    generator=torch.Generator().manual_seed(1))
    images = samples(DetDataSample, *shape, padded=True)
    with torch.no_grad():
        expected = retinanet['model'].predict(x, images)
    dets, labels = session(x, [image.img_shape for image in images])
    max_per_img = retinanet['cfg'].model.test_cfg.max_per_img
    assert dets.shape == (batch, max_per_img, 5)
    assert labels.shape == (batch, max_per_img)
    for sample, det, label in zip(expected, dets, labels):
        reference = sample.pred_instances
        count = len(reference.scores)
        assert count > 10  # NMS and top-k have work to do
        assert (label[:count] >= 0).all() and (label[count:] == -1).all()
        assert (det[count:] == 0).all()  # the padding convention
        assert torch.equal(label[:count], reference.labels)
        torch.testing.assert_close(det[:count, :4], reference.bboxes,
                                   rtol=0, atol=1e-3 * max(height, width))
        torch.testing.assert_close(det[:count, 4], reference.scores,
                                   rtol=0, atol=1e-5)


def test_faster_rcnn_wrapper_gives_the_detections_of_predict():
    """Faster R-CNN (Mask R-CNN without its mask head): the export wrapper,
    run in PyTorch with the ops that the ONNX file translates, gives
    predict's detections and no masks."""
    from mmevit.deploy import export_wrapper
    torch.manual_seed(0)
    _, task, model = build_model(MASK_TOY, {
        'model.roi_head.mask_head': None,
        'model.roi_head.mask_roi_extractor': None, **MASK_TEST_CFG})
    model.init_weights()
    torch.nn.init.normal_(model.rpn_head.rpn_cls.weight, std=3.)
    torch.nn.init.normal_(model.roi_head.bbox_head.fc_cls.weight, std=1.)
    wrapper = export_wrapper(task, model.eval())
    assert wrapper.output_names == ('dets', 'labels')
    x = torch.randn(2, 3, 100, 150, generator=torch.Generator().manual_seed(1))
    images = samples(DetDataSample, 2, 100, 150, padded=True)
    with torch.no_grad():
        expected = model.predict(x, images)
        dets, labels = wrapper(x, torch.tensor([image.img_shape
                                                for image in images]))
    for sample, det, label in zip(expected, dets, labels):
        reference = sample.pred_instances
        count = len(reference.scores)
        assert count > 10 and 'masks' not in reference
        assert torch.equal(label[:count], reference.labels)
        assert (label[count:] == -1).all()
        torch.testing.assert_close(det[:count, :4], reference.bboxes,
                                   rtol=0, atol=0.15)
        torch.testing.assert_close(det[:count, 4], reference.scores,
                                   rtol=0, atol=1e-5)


def test_folding_batch_norm_keeps_the_detections():
    from mmevit.deploy import fold_batch_norm
    torch.manual_seed(0)
    _, _, model = build_model(RETINA_TOY)
    for module in model.modules():  # BN statistics that matter when folded
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.)
    x = torch.randn(1, 3, 100, 150)
    with torch.no_grad():
        [expected] = model.predict(x, samples(DetDataSample, 1, 100, 150))
        folded = fold_batch_norm(model)
        [actual] = folded.predict(x, samples(DetDataSample, 1, 100, 150))
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in folded.modules())
    assert torch.equal(actual.pred_instances.labels,
                       expected.pred_instances.labels)
    torch.testing.assert_close(actual.pred_instances.bboxes,
                               expected.pred_instances.bboxes, rtol=0,
                               atol=1e-3)


def test_tools_test_gives_the_checkpoints_bbox_map(retinanet, toy_coco,
                                                   tmp_path):
    options = det_options(toy_coco)
    eager = run_test_tool(RETINA_TOY, retinanet['checkpoint'], options,
                          tmp_path / 'pth')
    onnx = run_test_tool(RETINA_TOY, retinanet['onnx'], options,
                         tmp_path / 'onnx')
    assert eager['coco/bbox_mAP_50'] > 0  # boxes that score something
    for name, value in eager.items():
        assert abs(onnx[name] - value) <= 0.002, (name, value, onnx[name])


def test_tools_test_gives_the_checkpoints_miou(fpn, toy_ade20k, tmp_path):
    options = seg_options(toy_ade20k)
    eager = run_test_tool(FPN_TOY, fpn['checkpoint'], options,
                          tmp_path / 'pth')
    onnx = run_test_tool(FPN_TOY, fpn['onnx'], options, tmp_path / 'onnx',
                         '--out', str(tmp_path / 'preds'))
    assert eager['mIoU'] > 0
    for name in ('aAcc', 'mIoU', 'mAcc'):  # percent
        assert abs(onnx[name] - eager[name]) <= 0.2, (name, eager, onnx)
    assert len(os.listdir(tmp_path / 'preds')) == 3


def test_inference_on_a_numpy_image_matches_pytorch(retinanet, toy_coco):
    from mmdet.apis import inference_detector
    image = (np.random.default_rng(0).random((120, 150, 3)) * 255).astype(
        np.uint8)
    model = init_onnx_model(retinanet['cfg'], retinanet['onnx'])
    assert model.dataset_meta['classes'] == ('circle', 'square', 'triangle')
    assert model.dataset_meta['palette'][0] == (220, 20, 60)
    result = inference_onnx(model, image).pred_instances
    eager = retinanet['model']
    eager.cfg = retinanet['cfg']
    expected = inference_detector(eager, image).pred_instances
    assert len(result.scores) == len(expected.scores) > 0
    assert torch.equal(result.labels, expected.labels)
    # boxes in the original image's pixels (the pipeline resized it 2x)
    assert result.bboxes[:, 2].max() <= 150 and result.bboxes[:, 3].max() <= 120
    torch.testing.assert_close(result.bboxes, expected.bboxes, rtol=0,
                               atol=0.05)


def test_demo_draws_the_onnx_segmentation(fpn, toy_ade20k, tmp_path):
    image = sorted(os.listdir(toy_ade20k['val_img_dir']))[0]
    out = tmp_path / 'demo.png'
    old, sys.argv = sys.argv, [
        'demo.py', osp.join(toy_ade20k['val_img_dir'], image), FPN_TOY,
        fpn['onnx'], '--out', str(out)]
    try:
        DEMO.main()
    finally:
        sys.argv = old
    assert out.stat().st_size > 0


def test_existing_out_is_kept_without_force(fpn, capsys):
    out = fpn['work'] / 'existing.onnx'
    out.write_bytes(b'keep')
    with pytest.raises(SystemExit):
        deploy(FPN_TOY, fpn['checkpoint'], out)
    assert 'existing.onnx exists; pass --force' in capsys.readouterr().err
    assert out.read_bytes() == b'keep'


def test_checkpoint_of_another_model_is_refused(fpn, tmp_path, capsys):
    with pytest.raises(SystemExit):
        deploy(RETINA_TOY, fpn['checkpoint'], tmp_path / 'x.onnx')
    error = capsys.readouterr().err
    assert 'does not fit' in error and 'RetinaNet' in error
    assert not (tmp_path / 'x.onnx').exists()


def test_onnx_of_another_task_is_refused_by_tools_test(fpn, toy_coco,
                                                       tmp_path):
    from mmevit.errors import ConfigError
    with pytest.raises(ConfigError, match=r'outputs \[.seg_logits.\]; a '
                       r'mmdet config needs .* \[.dets., .labels.\]'):
        run_test_tool(RETINA_TOY, fpn['onnx'], det_options(toy_coco),
                      tmp_path)


@DRAW
@given(batch=image_batches())
def test_retinanet_file_gives_predicts_detections_through_the_pipeline(
        retinanet, batch):
    counts = check_file_against_pytorch(retinanet, *batch)
    max_per_img = RETINA_TEST_CFG['model.test_cfg.max_per_img']
    for count in counts:
        event('detections: ' + ('0' if count == 0 else 'K' if count ==
                                max_per_img else '< K'))


@pytest.fixture(scope='module')
def fpn_models(fpn):
    """The toy Semantic FPN's config, PyTorch model and file in
    ``OnnxSegmentor``."""
    models = fpn['cfg'], fpn['model'], init_onnx_model(fpn['cfg'], fpn['onnx'])
    return lambda: models  # a short repr in hypothesis' reports


@DRAW
@given(batch=image_batches(max_side=200), size=st.tuples(
    st.integers(24, 200), st.integers(24, 200)))
def test_fpn_file_gives_predicts_label_maps_through_the_pipeline(
        fpn_models, batch, size):
    """The Semantic FPN file (in ``OnnxSegmentor``) against its PyTorch
    model through the test pipeline: logits and label maps of the original
    image, for drawn sizes, resizes and batches (mmseg's test batches hold
    images of one size, padded to the size divisor)."""
    cfg, model, onnx_model = fpn_models()
    images, scale, keep_ratio = batch
    images = [(seed, *size, mean, spread)
              for seed, _, _, mean, spread in images]
    inputs, data_samples = pipeline_batch(cfg, model, images, scale,
                                          keep_ratio)
    with torch.no_grad():
        expected = model.predict(inputs, copy.deepcopy(data_samples))
    actual = onnx_model.predict(inputs, copy.deepcopy(data_samples))
    for result, reference in zip(actual, expected):
        labels, reference_labels = (sample.pred_sem_seg.data[0]
                                    for sample in (result, reference))
        assert labels.shape == reference_labels.shape == reference.ori_shape
        torch.testing.assert_close(result.seg_logits.data,
                                   reference.seg_logits.data, rtol=0,
                                   atol=1e-4)
        agreement = (labels == reference_labels).float().mean().item()
        assert agreement >= 0.999, agreement


def test_retinanet_file_without_detections_gives_none(retinanet):
    """A flat grey image leaves no detection above the file's score_thr:
    K padding rows (label -1), no fake class-0 detections."""
    pixels = np.full((120, 150, 3), 128, np.uint8)
    counts = check_file_against_pytorch(retinanet, [pixels], (320, 256), True)
    assert counts == [0]


def test_retinanet_file_drops_boxes_small_in_the_original_image(retinanet):
    """min_bbox_size applies to the boxes rescaled to the original image,
    as in mmdet: a 60x75 image is resized 4.3x, so boxes of 4.3-26 input
    pixels are dropped that a filter in input pixels would keep."""
    rng = np.random.default_rng(1)
    # mid-grey noise: full-range noise saturates the toy's scores, and
    # equal scores of overlapping boxes make NMS's choice arbitrary
    pixels = rng.integers(40, 216, (60, 75, 3), dtype=np.uint8)
    counts = check_file_against_pytorch(retinanet, [pixels], (320, 256), True)
    assert counts[0] > 0


RTMDET_TOY = osp.join(ROOT, 'configs/toy/rtmdet_efficientvit_m0_toy.py')
HEAD_OPTIONS = dict(num_classes=3, in_channels=128, feat_channels=128,
                    stacked_convs=2)
#: Dense-head detectors: config, --cfg-options, the classifier to spread.
DENSE_DETECTORS = {
    'RetinaNet': (RETINA_TOY, {}, 'retina_cls'),
    'ATSS': (RETINA_TOY, {'model.bbox_head': dict(
        _delete_=True, type='ATSSHead', **HEAD_OPTIONS,
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0],
                              octave_base_scale=8, scales_per_octave=1,
                              strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                        target_stds=[0.1, 0.1, 0.2, 0.2]))}, 'atss_cls'),
    'FCOS': (RETINA_TOY, {'model.bbox_head': dict(
        _delete_=True, type='FCOSHead', **HEAD_OPTIONS,
        strides=[8, 16, 32, 64, 128])}, 'conv_cls'),
    'RTMDet': (RTMDET_TOY, {}, 'rtm_cls'),
}


@pytest.fixture(scope='module')
def dense_detectors(toy_coco):
    """Each dense-head detector, seeded random weights whose classifier
    scores spread over (0, 1)."""
    models = {}
    for name, (config, options, classifier) in DENSE_DETECTORS.items():
        torch.manual_seed(0)
        cfg, _, model = build_model(config, {**det_options(toy_coco),
                                             **options})
        model.init_weights()
        layers = getattr(model.bbox_head, classifier)
        spread_logits(model, list(layers) if isinstance(
            layers, nn.ModuleList) else [layers])
        models[name] = (cfg, model.eval())
    return lambda name: models[name]  # a short repr in hypothesis' reports


@st.composite
def drawn_test_cfg(draw):
    """Drawn test_cfg values and which side of K = max_per_img the
    detection count falls on."""
    return dict(
        score_thr=draw(st.sampled_from([0., 0.05, 0.3, 0.6, 0.9])),
        nms_pre=draw(st.sampled_from([20, 200, 1000])),
        min_bbox_size=draw(st.sampled_from([-1, 0, 3.5, 12., 40.])),
        count=draw(st.sampled_from(['0', '< K', 'K', '> K'])),
        extra=draw(st.integers(1, 5)),
        # NMS IoU; two-stage only: the RPN's proposal count and the RoI size
        # mapped to the second level
        iou=draw(st.sampled_from([0.3, 0.5, 0.7])),
        rpn_max_per_img=draw(st.sampled_from([40, 300])),
        finest_scale=draw(st.sampled_from([28, 56, 112])))


def max_per_img_for(count, detections, extra):
    """The max_per_img that makes ``detections`` (unlimited count) ``count``
    ('0' sets none, 0 < K, K or > K; None where impossible)."""
    if count == '< K':
        return detections + extra
    if count == 'K':
        return detections or None
    if count == '> K':
        return detections - extra if detections > extra else None
    return 100


def cut_is_determined(unlimited, max_per_img):
    """Whether keeping the ``max_per_img`` best of each image's
    ``unlimited`` detections is one choice: no exact tie in score across
    the cut (mmdet sorts with an unstable sort, so which of tied
    detections it keeps is unspecified; flat images tie)."""
    for sample in unlimited:
        scores = sample.pred_instances.scores.sort(descending=True).values
        if len(scores) > max_per_img and \
                scores[max_per_img - 1] - scores[max_per_img] < 1e-6:
            return False
    return True


def predict_with(model, head_cfg, inputs, data_samples, **test_cfg):
    head_cfg.update(test_cfg)
    with torch.no_grad():
        return model.predict(inputs, copy.deepcopy(data_samples))


@pytest.mark.parametrize('name', list(DENSE_DETECTORS))
@DRAW
@given(batch=image_batches(max_side=300), test=drawn_test_cfg())
# Found once (RTMDet): a box of sub-pixel width kept by mmdet, whose rescale
# multiplies by the reciprocal factor computed in double precision
@example(batch=([(217, 224, 155, 195, 154)], (342, 297), False),
         test=dict(score_thr=0., nms_pre=1000, min_bbox_size=0, count='> K',
                   extra=3, iou=0.65, rpn_max_per_img=300, finest_scale=56))
def test_dense_export_gives_predicts_detections_for_any_test_cfg(
        dense_detectors, name, batch, test):
    """The exported module of each dense head, under drawn thresholds,
    ``nms_pre``, ``min_bbox_size``, NMS IoU and a K below, at or above the
    count: PyTorch predict's detections, then padding rows."""
    from mmevit.deploy import export_wrapper
    cfg, model = dense_detectors(name)
    inputs, data_samples = pipeline_batch(cfg, model, *batch)
    head_cfg = model.bbox_head.test_cfg
    head_cfg.nms.iou_threshold = test['iou']
    settings_ = dict(score_thr=1. if test['count'] == '0' else
                     test['score_thr'], nms_pre=test['nms_pre'],
                     min_bbox_size=test['min_bbox_size'])
    unlimited = predict_with(model, head_cfg, inputs, data_samples,
                             max_per_img=10000, **settings_)
    # K from the image with the most detections
    most = max(len(sample.pred_instances) for sample in unlimited)
    max_per_img = max_per_img_for(test['count'], most, test['extra'])
    assume(max_per_img is not None)
    assume(cut_is_determined(unlimited, max_per_img))
    expected = predict_with(model, head_cfg, inputs, data_samples,
                            max_per_img=max_per_img, **settings_)
    wrapper = export_wrapper('mmdet', model)
    image_size = torch.tensor([s.img_shape for s in data_samples])
    factors = torch.tensor([s.scale_factor for s in data_samples],
                           dtype=torch.float64)
    with torch.no_grad():
        dets, labels = wrapper(inputs, image_size, factors)
    assert dets.shape == (len(inputs), max_per_img, 5)
    for det, label, sample in zip(dets, labels, expected):
        reference = sample.pred_instances
        count = len(reference)
        assert_padding_contract(det, label, count)
        assert_same_rows(det[:count], label[:count], sample, 1e-3)


def error_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines()
            if line.strip()]


@pytest.mark.parametrize('damage', ['random bytes', 'truncated'])
def test_unreadable_onnx_is_one_error_line_in_test_and_demo(
        fpn, toy_ade20k, tmp_path, monkeypatch, capsys, damage):
    bad = tmp_path / 'model.onnx'
    data = open(fpn['onnx'], 'rb').read()
    bad.write_bytes(np.random.default_rng(0).bytes(4096)
                    if damage == 'random bytes' else data[:len(data) // 2])
    image = osp.join(toy_ade20k['val_img_dir'],
                     sorted(os.listdir(toy_ade20k['val_img_dir']))[0])
    for tool, argv in (('test', [FPN_TOY, bad, '--work-dir', tmp_path]),
                       ('demo', [image, FPN_TOY, bad, '--out',
                                 tmp_path / 'demo.png'])):
        assert run_tool_in_process(monkeypatch, tool, *argv) == 2
        [line] = error_lines(capsys)
        assert line.startswith('error: ') and str(bad) in line, line
        assert 'not an ONNX model' in line


def test_onnx_with_another_num_classes_is_refused(
        retinanet, fpn, toy_coco, toy_ade20k, tmp_path, monkeypatch, capsys):
    """tools/test.py (detector), tools/demo.py and init_onnx_model
    (segmentor) name the file's and the config's number of classes."""
    from mmengine.config import Config

    from mmevit.errors import ConfigError
    options = {**det_options(toy_coco), 'model.bbox_head.num_classes': 5}
    assert run_tool_in_process(
        monkeypatch, 'test', RETINA_TOY, retinanet['onnx'], '--work-dir',
        tmp_path, '--cfg-options',
        *[f'{key}={value}' for key, value in options.items()]) == 2
    [line] = error_lines(capsys)
    assert line == (f'error: {retinanet["onnx"]} was exported with 3 '
                    'classes; the config has model.bbox_head.num_classes=5 '
                    '(export it from this config with tools/deploy.py)')
    config = tmp_path / 'fpn_7_classes.py'
    config.write_text(f'_base_ = {FPN_TOY!r}\n'
                      'model = dict(decode_head=dict(num_classes=7))\n')
    image = osp.join(toy_ade20k['val_img_dir'],
                     sorted(os.listdir(toy_ade20k['val_img_dir']))[0])
    assert run_tool_in_process(monkeypatch, 'demo', image, config,
                               fpn['onnx'], '--out', tmp_path / 'x.png') == 2
    [line] = error_lines(capsys)
    assert 'exported with 4 classes; the config has ' \
        'model.decode_head.num_classes=7' in line
    assert not (tmp_path / 'x.png').exists()
    with pytest.raises(ConfigError, match='exported with 4 classes'):
        init_onnx_model(Config.fromfile(str(config)), fpn['onnx'])


@pytest.fixture(scope='module')
def faster_rcnn(toy_coco):
    """Toy Faster R-CNN (Mask R-CNN without its mask head), random weights
    made to predict."""
    torch.manual_seed(0)
    cfg, _, model = build_model(MASK_TOY, {
        **det_options(toy_coco), 'model.roi_head.mask_head': None,
        'model.roi_head.mask_roi_extractor': None, **MASK_TEST_CFG})
    model.init_weights()
    nn.init.normal_(model.rpn_head.rpn_cls.weight, std=3.)
    nn.init.normal_(model.roi_head.bbox_head.fc_cls.weight, std=1.)
    model.eval()
    return lambda: (cfg, model)  # a short repr in hypothesis' reports


@DRAW
@given(batch=image_batches(max_side=200), test=drawn_test_cfg())
def test_faster_rcnn_export_gives_predicts_detections_for_any_test_cfg(
        faster_rcnn, batch, test):
    """The exported module of Faster R-CNN under drawn RPN ``nms_pre``,
    ``min_bbox_size`` and ``max_per_img``, NMS IoU of both stages, the RoI
    extractor's ``finest_scale``, R-CNN ``score_thr`` and a K below, at or
    above the count: PyTorch predict's detections, then padding rows."""
    from mmevit.deploy import export_wrapper
    cfg, model = faster_rcnn()
    inputs, data_samples = pipeline_batch(cfg, model, *batch)
    rpn_cfg, rcnn_cfg = model.rpn_head.test_cfg, model.roi_head.test_cfg
    rpn_cfg.update(nms_pre=test['nms_pre'],
                   min_bbox_size=test['min_bbox_size'],
                   max_per_img=test['rpn_max_per_img'])
    rpn_cfg.nms.iou_threshold = rcnn_cfg.nms.iou_threshold = test['iou']
    model.roi_head.bbox_roi_extractor.finest_scale = test['finest_scale']
    score_thr = 1. if test['count'] == '0' else test['score_thr'] / 3
    unlimited = predict_with(model, rcnn_cfg, inputs, data_samples,
                             score_thr=score_thr, max_per_img=1000)
    most = max(len(sample.pred_instances) for sample in unlimited)
    max_per_img = max_per_img_for(test['count'], most, test['extra'])
    assume(max_per_img is not None)
    assume(cut_is_determined(unlimited, max_per_img))
    expected = predict_with(model, rcnn_cfg, inputs, data_samples,
                            max_per_img=max_per_img)
    image_size = torch.tensor([s.img_shape for s in data_samples])
    with torch.no_grad():
        dets, labels = export_wrapper('mmdet', model)(inputs, image_size)
    assert dets.shape == (len(inputs), max_per_img, 5)
    for det, label, sample in zip(dets, labels, expected):
        reference = sample.pred_instances
        count = len(reference)
        assert_padding_contract(det, label, count)
        assert_same_rows(det[:count], label[:count], sample, 2e-3)


def test_running_a_file_does_not_import_the_exporter():
    """The runtime (tools/test.py, demo.py on an .onnx) imports neither the
    exporter nor its custom ops (torch.library.custom_op, torch >= 2.4)."""
    import subprocess
    code = ('import sys, mmevit.deploy, mmevit.deploy.runtime; '
            'print(sorted(m for m in ("mmevit.deploy.export", '
            '"mmevit.deploy.ops") if m in sys.modules))')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == '[]', result.stdout
