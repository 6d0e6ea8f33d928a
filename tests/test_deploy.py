"""Whole-model ONNX export (tools/deploy.py) against PyTorch predict, and
the exported files in the test loop, the demo and the inference API."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from conftest import load_tool
from mmdet.structures import DetDataSample
from mmseg.structures import SegDataSample
from toy_shapes import make_ade20k_toy

from mmevit.deploy import build_model, inference_onnx, init_onnx_model
from mmevit.deploy.runtime import OnnxSession

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RETINA_TOY = osp.join(ROOT, 'configs/toy/retinanet_efficientvit_m0_toy.py')
FPN_TOY = osp.join(ROOT, 'configs/toy/fpn_efficientvit_m0_toy_ade20k.py')
MASK_TOY = osp.join(ROOT, 'configs/toy/mask_rcnn_efficientvit_m0_toy.py')
# Fewer proposals and detections than the config (1000, 100) for test time.
MASK_TEST_CFG = {'model.test_cfg.rpn.max_per_img': 300,
                 'model.test_cfg.rcnn.max_per_img': 30}
# Traced at 160x192 (the stride-128 level 2x2: a size-1 level would be
# specialised by torch.export); none of the check sizes is the traced one,
# (131, 97) and (100, 150) need window padding in every stage, batch 2 is
# not the traced batch either.
TRACED = (160, 192)
CHECK_SHAPES = [(1, 96, 160), (1, 131, 97), (2, 100, 150)]


DEPLOY = load_tool('deploy')
TEST = load_tool('test')
DEMO = load_tool('demo')


def det_options(data):
    root = data['data_root'] + '/'
    options = {'test_evaluator.ann_file': data['val_ann_file'],
               'test_dataloader.dataset.data_root': root,
               'test_dataloader.batch_size': 2,
               'test_dataloader.num_workers': 0,
               'test_dataloader.persistent_workers': False}
    return options


def seg_options(data):
    return {'test_dataloader.dataset.data_root': data['data_root'],
            'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False}


def save_checkpoint(model, path, cfg):
    meta = dict(cfg.test_dataloader.dataset.metainfo)
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': meta}}, path)
    return str(path)


def deploy(config, checkpoint, out, *extra):
    DEPLOY.main([config, checkpoint, '--out', str(out), '--shape',
                 f'{TRACED[0]}x{TRACED[1]}', *extra])
    return str(out)


@pytest.fixture(scope='module')
def toy_ade20k(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_ade20k_deploy')
    return make_ade20k_toy(str(root), num_train=1, num_val=3, min_size=64,
                           max_size=128, show_progress=False)


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


@pytest.fixture(scope='module')
def retinanet(toy_coco, tmp_path_factory):
    """Toy RetinaNet with random weights whose classifier scores spread
    around 0.3 (every level fills nms_pre, NMS and top-k are busy), its
    checkpoint and its export."""
    def spread_scores(model):
        torch.nn.init.normal_(model.bbox_head.retina_cls.weight, std=3.)
        torch.nn.init.constant_(model.bbox_head.retina_cls.bias, -1.)

    return exported_toy(RETINA_TOY, det_options(toy_coco),
                        tmp_path_factory.mktemp('retinanet_deploy'),
                        spread_scores)


@pytest.fixture(scope='module')
def fpn(toy_ade20k, tmp_path_factory):
    """Toy Semantic FPN, random weights, its checkpoint and its export."""
    return exported_toy(FPN_TOY, seg_options(toy_ade20k),
                        tmp_path_factory.mktemp('fpn_deploy'))


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


def mask_iou(a, b):
    """Per-mask IoU of two (D, H, W) bool stacks (1 where both are empty)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), 1.)


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


def run_test_tool(config, checkpoint, options, work_dir, *extra):
    """tools/test.py in this process; returns the metrics."""
    from mmengine.runner import Runner
    argv = [config, checkpoint, '--work-dir', str(work_dir), *extra,
            '--cfg-options', *[f'{k}={v}' for k, v in options.items()]]
    old, sys.argv = sys.argv, ['test.py', *argv]
    try:
        cfg = TEST.build_cfg(TEST.parse_args())
    finally:
        sys.argv = old
    return Runner.from_cfg(cfg).test()


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


def test_mask_onnx_with_a_config_without_mask_head_is_refused(
        mask_rcnn, toy_coco, tmp_path):
    from mmevit.errors import ConfigError
    options = {**det_options(toy_coco), 'model.roi_head.mask_head': None}
    with pytest.raises(ConfigError, match=r"'masks'\]; the config's model "
                       'has no mask head'):
        run_test_tool(MASK_TOY, mask_rcnn['onnx'], options, tmp_path)
