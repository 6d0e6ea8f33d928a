"""bfloat16 inference: ``tools/test.py --bf16`` and ``tools/demo.py --bf16``
(the network under autocast, post-processing in float32) against fp32."""
import os
import os.path as osp

import pytest
import torch

from mmevit.tools import build_model
from mmevit.tools.precision import autocast_network
from tests.helpers import (
    FPN_TOY,
    RETINA_TOY,
    det_options,
    make_toy_ade20k,
    run_test_tool,
    run_tool_in_process,
    seg_options,
)


def bf16_det_options(data):
    """det_options with a score_thr that leaves a few detections."""
    return {**det_options(data), 'model.test_cfg.score_thr': 0.3}


def seeded_checkpoint(config, options, path, adjust=None):
    """The config's model with seeded initial weights (changed by
    ``adjust``) saved to ``path``; returns (path, model in eval mode)."""
    torch.manual_seed(0)
    _, _, model = build_model(config, options)
    model.init_weights()
    if adjust is not None:
        adjust(model)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path), model.eval()


def spread_scores(model):
    """Classifier weights whose scores spread over (0, 1) on random
    images: many detections above score_thr, NMS busy."""
    torch.nn.init.normal_(model.bbox_head.retina_cls.weight, std=0.05)
    torch.nn.init.zeros_(model.bbox_head.retina_cls.bias)


@pytest.fixture(scope='module')
def retinanet(toy_coco, tmp_path_factory):
    return seeded_checkpoint(RETINA_TOY, bf16_det_options(toy_coco),
                             tmp_path_factory.mktemp('bf16') / 'retina.pth',
                             spread_scores)


@pytest.fixture(scope='module')
def toy_ade20k(tmp_path_factory):
    return make_toy_ade20k(tmp_path_factory.mktemp('toy_ade20k_bf16'))



def test_bf16_bbox_map_equals_fp32(retinanet, toy_coco, tmp_path):
    options = bf16_det_options(toy_coco)
    fp32 = run_test_tool(RETINA_TOY, retinanet[0], options, tmp_path / 'a')
    bf16 = run_test_tool(RETINA_TOY, retinanet[0], options, tmp_path / 'b',
                         '--bf16')
    assert fp32['coco/bbox_mAP_50'] > 0  # boxes that score something
    for name, value in fp32.items():
        assert abs(bf16[name] - value) <= 0.01, (name, value, bf16[name])


def test_bf16_miou_equals_fp32(toy_ade20k, tmp_path):
    options = seg_options(toy_ade20k)
    checkpoint, _ = seeded_checkpoint(FPN_TOY, options, tmp_path / 'fpn.pth')
    fp32 = run_test_tool(FPN_TOY, checkpoint, options, tmp_path / 'a')
    bf16 = run_test_tool(FPN_TOY, checkpoint, options, tmp_path / 'b',
                         '--bf16')
    assert fp32['mIoU'] > 0
    for name in ('aAcc', 'mIoU', 'mAcc'):  # percent
        assert abs(bf16[name] - fp32[name]) <= 1.0, (name, fp32, bf16)


def test_bf16_network_gives_float32_detections_close_to_fp32(retinanet):
    """Only the network runs in bfloat16: priors, decoding and NMS get
    float32, and the boxes stay within a pixel of fp32's (decoded from
    bfloat16 priors they would sit on a 2-pixel grid at x >= 256)."""
    import copy

    from mmdet.structures import DetDataSample
    _, model = retinanet
    bf16 = autocast_network(copy.deepcopy(model), 'bf16')
    x = torch.randn(1, 3, 320, 480, generator=torch.Generator(
    ).manual_seed(0))
    meta = dict(img_shape=(320, 480), ori_shape=(320, 480),
                scale_factor=(1., 1.), pad_shape=(320, 480),
                batch_input_shape=(320, 480))
    with torch.no_grad():
        [expected] = model.predict(x, [DetDataSample(metainfo=meta)])
        [actual] = bf16.predict(x, [DetDataSample(metainfo=meta)])
    expected, actual = expected.pred_instances, actual.pred_instances
    assert actual.bboxes.dtype == actual.scores.dtype == torch.float32
    assert len(expected) > 20
    # the detections both keep, matched by label and nearest box
    ious = _box_iou(expected.bboxes, actual.bboxes)
    same_label = expected.labels[:, None] == actual.labels[None, :]
    best = torch.where(same_label, ious, 0.).max(1).values
    assert (best >= 0.9).float().mean() >= 0.9, best


def _box_iou(a, b):
    from mmdet.structures.bbox import bbox_overlaps
    return bbox_overlaps(a, b)


def test_fp16_on_cpu_and_bf16_with_onnx_are_one_error_line(
        retinanet, toy_coco, tmp_path, monkeypatch, capsys):
    image = osp.join(toy_coco['val_img_dir'],
                     sorted(os.listdir(toy_coco['val_img_dir']))[0])
    onnx_file = tmp_path / 'model.onnx'
    onnx_file.write_bytes(b'not read')
    runs = [('test', [RETINA_TOY, retinanet[0], '--fp16', '--work-dir',
                      tmp_path], '--fp16 runs on CUDA only'),
            ('demo', [image, RETINA_TOY, retinanet[0], '--fp16', '--out',
                      tmp_path / 'x.png'], '--fp16 runs on CUDA only'),
            ('test', [RETINA_TOY, onnx_file, '--bf16', '--work-dir',
                      tmp_path], '--bf16 applies to PyTorch checkpoints'),
            ('demo', [image, RETINA_TOY, onnx_file, '--bf16', '--out',
                      tmp_path / 'x.png'],
             '--bf16 applies to PyTorch checkpoints')]
    for tool, argv, message in runs:
        if torch.cuda.is_available() and '--fp16' in argv:
            continue
        assert run_tool_in_process(monkeypatch, tool, *argv) == 2
        lines = [line for line in capsys.readouterr().err.splitlines()
                 if line.strip()]
        assert len(lines) == 1 and lines[0].startswith('error: '), lines
        assert message in lines[0]
    assert not (tmp_path / 'x.png').exists()
