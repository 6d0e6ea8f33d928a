"""Whole-model ONNX export of Mask R-CNN (tools/deploy.py) against PyTorch
predict: detections and masks, in the test loop and the inference API (a
file of its own so that its export runs beside test_deploy's)."""
import os

import numpy as np
import pytest
import torch
from hypothesis import given
from mmdet.structures import DetDataSample

from tests.helpers import (
    MASK_TOY,
    det_options,
    run_test_tool,
    skip_module_without_exporter,
)

skip_module_without_exporter()

from mmevit.deploy import inference_onnx, init_onnx_model  # noqa: E402
from tests.deploy_helpers import (  # noqa: E402
    CHECK_SHAPES,
    DRAW,
    MASK_TEST_CFG,
    check_file_against_pytorch,
    deploy,
    exported_toy,
    image_batches,
    mask_iou,
    samples,
)


@pytest.fixture(scope='module')
def mask_rcnn(toy_coco, tmp_path_factory):
    """Toy Mask R-CNN with random weights made to predict: RPN scores that
    spread (300 proposals, NMS busy), class scores of about 0.3 (every
    image fills its 30 detections) and masks that cover most of their
    boxes (segm AP above 0); its checkpoint, its export and the export as
    an mmdet model."""
    def make_predict(model):
        torch.nn.init.normal_(model.rpn_head.rpn_cls.weight, std=3.)
        torch.nn.init.normal_(model.roi_head.bbox_head.fc_cls.weight, std=1.)
        mask_logits = model.roi_head.mask_head.conv_logits
        torch.nn.init.normal_(mask_logits.weight, std=1.)
        torch.nn.init.constant_(mask_logits.bias, 0.2)

    toy = exported_toy(MASK_TOY, {**det_options(toy_coco), **MASK_TEST_CFG},
                       tmp_path_factory.mktemp('mask_rcnn_deploy'),
                       make_predict, export_options=MASK_TEST_CFG)
    return dict(toy, onnx_model=init_onnx_model(toy['cfg'], toy['onnx']))


@pytest.mark.parametrize('shape', CHECK_SHAPES, ids=str)
def test_mask_rcnn_detections_and_masks_match_pytorch(mask_rcnn, shape):
    batch, height, width = shape
    x = torch.randn(batch, 3, height, width,
                    generator=torch.Generator().manual_seed(1))
    max_per_img = mask_rcnn['cfg'].model.test_cfg.rcnn.max_per_img
    onnx_model = mask_rcnn['onnx_model']
    images = samples(DetDataSample, *shape, padded=True)
    dets, labels, masks = onnx_model.session(
        x, [image.img_shape for image in images])
    assert dets.shape == (batch, max_per_img, 5)
    assert masks.shape == (batch, max_per_img, 28, 28)
    with torch.no_grad():
        expected = mask_rcnn['model'].predict(x, images)
        actual = onnx_model.predict(
            x, samples(DetDataSample, *shape, padded=True))
    for index, (sample, result) in enumerate(zip(expected, actual)):
        reference, result = sample.pred_instances, result.pred_instances
        count = len(reference.scores)
        assert count > 10  # NMS and top-k have work to do
        assert (labels[index, count:] == -1).all()  # the padding convention
        assert (dets[index, count:] == 0).all()
        assert (masks[index, count:] == 0).all()
        assert torch.equal(result.labels, reference.labels)
        torch.testing.assert_close(result.bboxes, reference.bboxes, rtol=0,
                                   atol=1e-3 * max(height, width))
        torch.testing.assert_close(result.scores, reference.scores, rtol=0,
                                   atol=1e-5)
        assert result.masks.shape == reference.masks.shape == (
            count, *sample.img_shape)
        iou = mask_iou(result.masks, reference.masks)
        assert iou.min() >= 0.99, iou.min()
        assert reference.masks.flatten(1).any(1).float().mean() > 0.5


def test_tools_test_gives_the_checkpoints_bbox_and_segm_map(
        mask_rcnn, toy_coco, tmp_path):
    options = {**det_options(toy_coco), **MASK_TEST_CFG}
    eager = run_test_tool(MASK_TOY, mask_rcnn['checkpoint'], options,
                          tmp_path / 'pth')
    onnx = run_test_tool(MASK_TOY, mask_rcnn['onnx'], options,
                         tmp_path / 'onnx')
    assert eager['coco/bbox_mAP_50'] > 0 and eager['coco/segm_mAP_50'] > 0
    assert 'coco/segm_mAP' in onnx
    for name, value in eager.items():
        assert abs(onnx[name] - value) <= 0.002, (name, value, onnx[name])


def test_inference_gives_masks_of_the_original_image(mask_rcnn):
    from mmdet.apis import inference_detector
    image = (np.random.default_rng(0).random((120, 150, 3)) * 255).astype(
        np.uint8)  # the pipeline resizes it 2.13x, to 256x320
    result = inference_onnx(mask_rcnn['onnx_model'], image).pred_instances
    eager = mask_rcnn['model']
    eager.cfg = mask_rcnn['cfg']
    expected = inference_detector(eager, image).pred_instances
    assert result.masks.shape == expected.masks.shape == (30, 120, 150)
    assert torch.equal(result.labels, expected.labels)
    torch.testing.assert_close(result.bboxes, expected.bboxes, rtol=0,
                               atol=0.15)
    assert mask_iou(result.masks, expected.masks).min() >= 0.99


def test_unsupported_head_is_named_and_leaves_no_file(mask_rcnn, tmp_path,
                                                      capsys):
    checkpoint = mask_rcnn['checkpoint']
    out = tmp_path / 'out' / 'mask.onnx'
    out.parent.mkdir()
    with pytest.raises(SystemExit) as exit_info:  # soft-NMS is not exported
        deploy(MASK_TOY, checkpoint, out, '--cfg-options',
               'model.test_cfg.rcnn.nms.type=soft_nms')
    assert exit_info.value.code == 2
    [error] = [line for line in capsys.readouterr().err.splitlines()
               if line.startswith('error:')]
    assert "StandardRoIHead with test_cfg.rcnn.nms.type='soft_nms'" in error
    assert 'RetinaHead' in error and 'FCNMaskHead' in error
    assert os.listdir(out.parent) == []


def test_mask_onnx_with_a_config_without_mask_head_is_refused(
        mask_rcnn, toy_coco, tmp_path):
    from mmevit.errors import ConfigError
    options = {**det_options(toy_coco), 'model.roi_head.mask_head': None}
    with pytest.raises(ConfigError, match=r"'masks'\]; the config's model "
                       'has no mask head'):
        run_test_tool(MASK_TOY, mask_rcnn['onnx'], options, tmp_path)


@DRAW
@given(batch=image_batches(max_side=200))
def test_mask_rcnn_file_gives_predicts_detections_through_the_pipeline(
        mask_rcnn, batch):
    check_file_against_pytorch(mask_rcnn, *batch)
