"""mmdet's DetInferencer and mmseg's MMSegInferencer on mmevit configs and
checkpoints give what mmevit's own strict loading and inference give."""
import os.path as osp

import mmcv
import numpy as np
import torch
from mmengine.config import Config

from mmevit.engine import load_model_checkpoint
from mmevit.tools import replace_sync_bn
from tests.helpers import randomize_weights

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RETINA_TOY = osp.join(ROOT, 'configs/toy/retinanet_efficientvit_m0_toy.py')
FPN_TOY = osp.join(ROOT, 'configs/toy/fpn_efficientvit_m0_toy_ade20k.py')


def saved_random_model(config, registry, path, randomize=False):
    """A checkpoint of ``config``'s model with seeded random weights, as
    mmengine saves it (dataset_meta from the config). ``randomize`` also
    draws BN statistics and zero-initialised weights (a segmentor's classes
    then vary over the image; a detector's default initialisation already
    scores boxes over its threshold)."""
    cfg = Config.fromfile(config)
    replace_sync_bn(cfg.model)
    torch.manual_seed(0)
    model = registry.build(cfg.model)
    if randomize:
        randomize_weights(model, seed=0)
    meta = dict(cfg.test_dataloader.dataset.metainfo)
    torch.save({'meta': {'dataset_meta': meta},
                'state_dict': model.state_dict()}, path)
    return str(path)


def strictly_loaded(config, init, checkpoint):
    """The model as mmevit's tools build it: no weights from the init
    function, then the checkpoint loaded strictly."""
    model = init(config, None, device='cpu')
    load_model_checkpoint(model, checkpoint)
    return model.eval()


def test_det_inferencer_on_an_mmevit_config(toy_coco, tmp_path):
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    checkpoint = saved_random_model(RETINA_TOY, MODELS, tmp_path / 'det.pth')
    image = osp.join(toy_coco['val_img_dir'], '000001.jpg')
    inferencer = DetInferencer(model=RETINA_TOY, weights=checkpoint,
                               device='cpu', show_progress=False)
    result = inferencer(image, return_datasamples=True, pred_score_thr=0.)
    predicted = result['predictions'][0].pred_instances
    expected = inference_detector(
        strictly_loaded(RETINA_TOY, init_detector, checkpoint),
        mmcv.imread(image)).pred_instances
    assert len(expected) > 0
    assert torch.equal(predicted.labels, expected.labels)
    assert torch.allclose(predicted.bboxes, expected.bboxes, atol=1e-3)
    assert torch.allclose(predicted.scores, expected.scores, atol=1e-5)


def test_mmseg_inferencer_on_an_mmevit_config(toy_coco, tmp_path):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    checkpoint = saved_random_model(FPN_TOY, MODELS, tmp_path / 'seg.pth',
                                    randomize=True)
    image = osp.join(toy_coco['val_img_dir'], '000001.jpg')
    inferencer = MMSegInferencer(model=FPN_TOY, weights=checkpoint,
                                 device='cpu')
    predicted = inferencer(image, return_datasamples=True)
    expected = inference_model(strictly_loaded(FPN_TOY, init_model,
                                               checkpoint), mmcv.imread(image))
    assert predicted.pred_sem_seg.data.shape == (1, *mmcv.imread(image).shape[:2])
    assert np.array_equal(predicted.pred_sem_seg.data.numpy(),
                          expected.pred_sem_seg.data.numpy())
    assert len(predicted.pred_sem_seg.data.unique()) > 1

