"""INT8 files (``tools/deploy.py --quantize int8``) against the fp32 file
they were quantized from, in the runtime and the tools."""
import copy
import os
import os.path as osp
import re

import pytest
import torch

from tests.helpers import (
    FPN_TOY,
    RETINA_TOY,
    det_options,
    make_toy_ade20k,
    run_test_tool,
    run_tool_in_process,
    seg_options,
    skip_module_without_exporter,
)

skip_module_without_exporter()

from mmdet.structures.bbox import bbox_overlaps  # noqa: E402

from mmevit.deploy.calibration import folder_batches  # noqa: E402
from mmevit.deploy.runtime import OnnxSession  # noqa: E402
from tests.deploy_helpers import (  # noqa: E402
    DEPLOY,
    exported_toy,
    spread_logits,
)

# A score threshold that leaves 10-500 detections per image, below K.
RETINA_INT8_CFG = {'model.test_cfg.score_thr': 0.995,
                   'model.test_cfg.max_per_img': 1000,
                   'model.test_cfg.min_bbox_size': 0}
CALIB_IMAGES = 2
# Resize scales of the checks: none is the config's (the calibration's).
DET_SCALES = [(200, 160), (416, 288)]
SEG_SCALES = [(512, 96), (1024, 160)]


def quantize(config, fp32_file, out, options, *extra):
    DEPLOY.main([config, fp32_file, '--out', str(out), '--quantize', 'int8',
                 '--calib-images', str(CALIB_IMAGES), *extra,
                 '--cfg-options', *[f'{k}={v}' for k, v in options.items()]])
    return str(out)


@pytest.fixture(scope='module')
def retinanet(toy_coco, tmp_path_factory):
    """Toy RetinaNet, random weights with spread scores, its fp32 export
    and the int8 file calibrated on the first test images."""
    work = tmp_path_factory.mktemp('retinanet_int8')
    options = {**det_options(toy_coco), **RETINA_INT8_CFG}
    toy = exported_toy(
        RETINA_TOY, options, work,
        lambda model: spread_logits(model, [model.bbox_head.retina_cls]),
        export_options=RETINA_INT8_CFG)
    toy['int8'] = quantize(RETINA_TOY, toy['onnx'], work / 'int8.onnx',
                           options)
    toy['options'] = options
    return toy


@pytest.fixture(scope='module')
def toy_ade20k(tmp_path_factory):
    return make_toy_ade20k(tmp_path_factory.mktemp('toy_ade20k_int8'))


@pytest.fixture(scope='module')
def fpn(toy_ade20k, tmp_path_factory):
    """Toy Semantic FPN, random weights, its fp32 export and int8 file."""
    work = tmp_path_factory.mktemp('fpn_int8')
    toy = exported_toy(FPN_TOY, seg_options(toy_ade20k), work)
    toy['int8'] = quantize(FPN_TOY, toy['onnx'], work / 'int8.onnx',
                           seg_options(toy_ade20k))
    return toy


def batches_at(cfg, task, folder, scale):
    """The images of ``folder`` through the test pipeline resized to
    ``scale`` and the data preprocessor, one per batch."""
    cfg = copy.deepcopy(cfg)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'].endswith('Resize'):
            step['scale'] = scale
    files = [osp.join(folder, name) for name in sorted(os.listdir(folder))]
    return list(folder_batches(cfg, task, files))


def twins(dets, labels, other_dets, other_labels, min_score):
    """Per detection of one image scoring ``min_score`` or more: whether
    the other file has one of the same label overlapping it by IoU >= 0.5.
    """
    valid, other = (labels >= 0) & (dets[:, 4] >= min_score), labels >= 0
    same = labels[valid][:, None] == other_labels[other][None]
    ious = bbox_overlaps(dets[valid, :4], other_dets[other, :4])
    return (torch.where(same, ious, 0.) >= 0.5).any(1)


@pytest.mark.parametrize('scale', DET_SCALES, ids=str)
def test_int8_detections_agree_with_fp32(retinanet, toy_coco, scale):
    """At sizes the calibration did not see, 95% of the detections of each
    file have a twin in the other: same label, IoU >= 0.5 (COCO's loosest
    match; a box NMS kept in place of its neighbour still overlaps it by
    more than NMS's 0.5). Close calls at the threshold (scores within
    0.002 of it: a logit change of 0.4) may fall on either side. Random
    weights saturate the top scores (within 1e-4 of each other), so int8's
    rounding reorders near-ties at NMS: a few percent of the detections,
    where trained weights separate them; the 0.01 mAP target is measured
    on the trained toy model (make demo)."""
    fp32 = OnnxSession(retinanet['onnx'], 'mmdet')
    int8 = OnnxSession(retinanet['int8'], 'mmdet')
    min_score = RETINA_INT8_CFG['model.test_cfg.score_thr'] + 0.002
    checked = 0
    for inputs, samples in batches_at(retinanet['cfg'], 'mmdet',
                                      toy_coco['val_img_dir'], scale):
        sizes = [sample.img_shape for sample in samples]
        (dets, labels), (dets8, labels8) = fp32(inputs, sizes), int8(
            inputs, sizes)
        for found in (
                twins(dets[0], labels[0], dets8[0], labels8[0], min_score),
                twins(dets8[0], labels8[0], dets[0], labels[0], min_score)):
            assert len(found) == 0 or found.float().mean() >= 0.95, found
            checked += len(found)
    assert checked > 40


@pytest.mark.parametrize('scale', SEG_SCALES, ids=str)
def test_int8_label_maps_agree_with_fp32(fpn, toy_ade20k, scale):
    """mIoU within 1.0 (percent): at most 1% of the pixels may change label,
    at sizes the calibration did not see. Close calls may flip: pixels
    whose two best fp32 logits differ by less than a quarter of the
    logits' spread (random weights put half of the pixels there; trained
    ones few)."""
    fp32 = OnnxSession(fpn['onnx'], 'mmseg')
    int8 = OnnxSession(fpn['int8'], 'mmseg')
    for inputs, _ in batches_at(fpn['cfg'], 'mmseg',
                                toy_ade20k['val_img_dir'], scale):
        [logits], [logits8] = fp32(inputs), int8(inputs)
        labels = logits.argmax(1)
        best, second = logits.topk(2, 1).values.unbind(1)
        decided = best - second >= 0.25 * logits.std()
        agreement = (labels == logits8.argmax(1))[decided].float().mean()
        assert agreement >= 0.99, agreement
        assert decided.float().mean() > 0.2 and len(labels.unique()) > 1


def test_int8_file_is_marked_and_keeps_the_metadata(retinanet):
    fp32 = OnnxSession(retinanet['onnx'], 'mmdet')
    int8 = OnnxSession(retinanet['int8'], 'mmdet')
    assert (fp32.precision, int8.precision) == ('fp32', 'int8')
    assert int8.num_classes == 3
    assert int8.dataset_meta == fp32.dataset_meta
    assert int8.dataset_meta['classes'] == ('circle', 'square', 'triangle')


def test_tools_test_runs_the_int8_file(fpn, toy_ade20k, tmp_path):  # noqa: F811
    options = seg_options(toy_ade20k)
    fp32 = run_test_tool(FPN_TOY, fpn['onnx'], options, tmp_path / 'fp32')
    int8 = run_test_tool(FPN_TOY, fpn['int8'], options, tmp_path / 'int8')
    assert fp32['mIoU'] > 0
    assert abs(int8['mIoU'] - fp32['mIoU']) <= 1.0, (fp32, int8)


def test_max_drop_prints_both_metrics_and_warns_above_it(
        fpn, toy_ade20k, tmp_path, capsys):  # noqa: F811
    options = seg_options(toy_ade20k)
    for max_drop in ('0', '100'):
        quantize(FPN_TOY, fpn['onnx'], tmp_path / f'{max_drop}.onnx',
                 options, '--max-drop', max_drop)
        captured = capsys.readouterr()
        [line] = [line for line in captured.out.splitlines()
                  if line.startswith('mIoU on the 2 calibration images')]
        fp32, int8 = (float(value) for value in re.findall(
            r'(?:fp32|int8) (-?[\d.]+)', line))
        warnings = [line for line in captured.err.splitlines()
                    if line.startswith('warning:')]
        drop = fp32 - int8 > float(max_drop)
        assert len(warnings) == drop, (line, warnings)
        if drop:
            assert f'{int8:.4f}' in warnings[0] and f'{fp32:.4f}' in \
                warnings[0]


def error_line(capsys):
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), lines
    return lines[0]


def test_bad_calibration_input_is_one_error_line(fpn, tmp_path, monkeypatch,
                                                 capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    junk = tmp_path / 'junk'
    junk.mkdir()
    (junk / 'a.jpg').write_bytes(b'not an image')
    out = tmp_path / 'int8.onnx'
    cases = [(['--calib-images', '0'], '--calib-images 0: give 1 or more'),
             (['--calib-dir', tmp_path / 'missing'],
              f'calibration folder not found: {tmp_path / "missing"}'),
             (['--calib-dir', empty], f'{empty} holds no image'),
             (['--calib-dir', junk],
              f'cannot decode the calibration image {junk / "a.jpg"}'),
             (['--max-drop', '-1'], '--max-drop -1.0: give a drop >= 0')]
    for extra, message in cases:
        assert run_tool_in_process(
            monkeypatch, 'deploy', FPN_TOY, fpn['onnx'], '--out', out,
            '--quantize', 'int8', *extra) == 2
        assert message in error_line(capsys), extra
        assert not out.exists()


def test_int8_and_unquantized_onnx_inputs_are_refused(
        retinanet, tmp_path, monkeypatch, capsys):
    out = tmp_path / 'again.onnx'
    assert run_tool_in_process(
        monkeypatch, 'deploy', RETINA_TOY, retinanet['int8'], '--out', out,
        '--quantize', 'int8') == 2
    assert f'{retinanet["int8"]} is already int8' in error_line(capsys)
    assert run_tool_in_process(monkeypatch, 'deploy', RETINA_TOY,
                               retinanet['onnx'], '--out', out) == 2
    assert 'pass --quantize int8 to quantize it' in error_line(capsys)
    assert not out.exists()
