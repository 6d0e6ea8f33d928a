"""tools/test.py's mmdet-style options: --tta (the config's tta_model and
tta_pipeline), --show and --wait-time, on the toy configs."""
import os
import sys

import matplotlib.pyplot as plt
import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import load

from mmevit.errors import ConfigError
from mmevit.tools import build_model
from tests.helpers import det_options, load_tool, make_toy_ade20k, run_test_tool, seg_options

RTMDET_TOY = 'configs/toy/rtmdet_efficientvit_m0_toy.py'
RETINA_TOY = 'configs/toy/retinanet_efficientvit_m0_toy.py'
FPN_TOY = 'configs/toy/fpn_efficientvit_m0_toy_ade20k.py'
MASK_TOY = 'configs/toy/mask_rcnn_efficientvit_m0_toy.py'


def random_checkpoint(config, path):
    """A whole-model checkpoint of the config's model, seeded weights."""
    torch.manual_seed(0)
    _, _, model = build_model(config)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def built_cfg(config, checkpoint, *extra):
    """The runner config tools/test.py builds for these arguments."""
    test = load_tool('test')
    old, sys.argv = sys.argv, ['test.py', config, checkpoint, *extra]
    try:
        args = test.parse_args()
    finally:
        sys.argv = old
    return test.build_cfg(args)


@pytest.mark.parametrize('config,tta_model', [(RTMDET_TOY, 'DetTTAModel'),
                                              (FPN_TOY, 'SegTTAModel')])
def test_tta_wraps_the_model_and_tests_the_tta_pipeline(config, tta_model, tmp_path):
    plain = Config.fromfile(config)
    checkpoint = random_checkpoint(config, tmp_path / 'model.pth')
    cfg = built_cfg(config, checkpoint, '--tta')
    assert cfg.model.type.endswith(tta_model)
    assert cfg.model.module.type == plain.model.type
    assert cfg.model.module.backbone == plain.model.backbone
    assert cfg.test_dataloader.dataset.pipeline == plain.tta_pipeline
    # without --tta: the plain model and test pipeline
    cfg = built_cfg(config, checkpoint)
    assert cfg.model.type == plain.model.type
    assert cfg.test_dataloader.dataset.pipeline == plain.test_dataloader.dataset.pipeline


def test_tta_gives_one_merged_prediction_per_image(toy_coco, tmp_path):
    checkpoint = random_checkpoint(RTMDET_TOY, tmp_path / 'model.pth')
    out = tmp_path / 'results.pkl'
    run_test_tool(RTMDET_TOY, checkpoint, det_options(toy_coco),
                  tmp_path / 'work', '--tta', '--out', str(out))
    results = load(str(out))
    # 3 scales x 2 flips per image, merged into one prediction each
    assert len(results) == toy_coco['num_val']
    assert sorted(r['img_id'] for r in results) == list(range(1, toy_coco['num_val'] + 1))
    for result in results:
        assert result['pred_instances']['bboxes'].shape[-1] == 4


def test_tta_runs_and_scores_a_segmentor(tmp_path):
    data = make_toy_ade20k(tmp_path / 'ade')
    checkpoint = random_checkpoint(FPN_TOY, tmp_path / 'model.pth')
    metrics = run_test_tool(FPN_TOY, checkpoint, seg_options(data),
                            tmp_path / 'work', '--tta')
    assert 0 <= metrics['mIoU'] <= 100


def test_tta_without_a_tta_model_names_the_missing_keys(tmp_path):
    checkpoint = random_checkpoint(MASK_TOY, tmp_path / 'model.pth')
    with pytest.raises(ConfigError, match='--tta needs tta_model and tta_pipeline'):
        built_cfg(MASK_TOY, checkpoint, '--tta')


def test_tta_refuses_an_onnx_file(tmp_path):
    onnx = tmp_path / 'model.onnx'
    onnx.write_bytes(b'')
    with pytest.raises(ConfigError, match='--tta runs the PyTorch model'):
        load_tool('test').use_tta(built_cfg(RTMDET_TOY, random_checkpoint(
            RTMDET_TOY, tmp_path / 'model.pth')), str(onnx))


@pytest.fixture
def recorded_windows(tmp_path, monkeypatch):
    """What --show shows, through a matplotlib backend that saves each
    window's picture and the time it waits for a key."""
    folder = tmp_path / 'shown'
    folder.mkdir()
    monkeypatch.setenv('MMEVIT_SHOWN_DIR', str(folder))
    backend = plt.get_backend()
    plt.switch_backend('module://tests.show_recorder')
    yield folder
    plt.switch_backend(backend)


@pytest.mark.parametrize('config', [RETINA_TOY, FPN_TOY])
def test_show_shows_every_test_image_for_wait_time(config, toy_coco, tmp_path,
                                                   recorded_windows):
    if config == FPN_TOY:
        data = make_toy_ade20k(tmp_path / 'ade')
        # mmseg's visualization hook reads runner.iter, which builds the
        # training data loader even in a test run
        options = dict(seg_options(data), **{
            'train_dataloader.dataset.data_root': data['data_root']})
        images = data['num_val']
    else:
        options, images = det_options(toy_coco), toy_coco['num_val']
    checkpoint = random_checkpoint(config, tmp_path / 'model.pth')
    run_test_tool(config, checkpoint, options, tmp_path / 'work',
                  '--show', '--wait-time', '0.25')
    shown = sorted(p.name for p in recorded_windows.glob('shown_*.png'))
    assert len(shown) == images
    waits = (recorded_windows / 'waits.txt').read_text().split()
    assert waits == ['0.25'] * images
    assert not os.path.exists(tmp_path / 'work' / 'vis_data' / 'vis_image')
