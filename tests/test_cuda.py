"""GPU readiness (skipped without CUDA): mixed-precision training steps,
CUDA predictions equal to CPU ones, the inference paths on CUDA.

`bash tools/analysis_tools/gpu_check.sh` runs these and the paper's
throughput protocol on a GPU machine.
"""
import copy
import json
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from mmevit.models import EfficientViT
from mmevit.tools import replace_sync_bn
from tests.detection_data import as_cli, fake_batch, toy_options
from tests.helpers import run_tool

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA GPU')]

RETINA_TOY = 'configs/toy/retinanet_efficientvit_m0_toy.py'
MASK_TOY = 'configs/toy/mask_rcnn_efficientvit_m0_toy.py'

register_all_modules(init_default_scope=True)


def losses_of(work_dir):
    """The logged training losses of a run in ``work_dir``."""
    [scalars] = list(work_dir.glob('*/vis_data/scalars.json'))
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [r['loss'] for r in records if 'loss' in r]


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_amp_training_on_cuda_gives_finite_losses(toy_coco, tmp_path, dtype):
    options = toy_options(toy_coco, **{
        'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 10,
        'default_hooks.logger.interval': 1, 'optim_wrapper.dtype': dtype})
    run_tool('tools/train.py', RETINA_TOY, '--amp', '--work-dir', tmp_path,
             *as_cli(options))
    losses = losses_of(tmp_path)
    assert losses and all(math.isfinite(loss) for loss in losses)


@pytest.mark.parametrize('config', [RETINA_TOY, MASK_TOY])
def test_cuda_predictions_equal_cpu_ones(config):
    cfg = Config.fromfile(config)
    replace_sync_bn(cfg.model)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    batch = fake_batch(with_masks=False)
    batch = dict(inputs=[torch.randint(0, 255, (3, 128, 160),
                                       dtype=torch.uint8)] * 2,
                 data_samples=batch)
    with torch.no_grad():
        on_cpu = model.test_step(copy.deepcopy(batch))
        on_cuda = model.cuda().test_step(copy.deepcopy(batch))
    for cpu, cuda in zip(on_cpu, on_cuda):
        cpu, cuda = cpu.pred_instances, cuda.pred_instances.cpu()
        assert torch.equal(cpu.labels, cuda.labels)
        assert torch.allclose(cpu.bboxes, cuda.bboxes, atol=1e-2)
        assert torch.allclose(cpu.scores, cuda.scores, atol=1e-4)


@pytest.mark.parametrize('deploy', [False, True])
def test_backbone_on_cuda_equals_cpu_and_follows_weight_changes(deploy):
    torch.manual_seed(0)
    model = EfficientViT(arch='m0').eval()
    if deploy:
        model.switch_to_deploy()
    x = torch.randn(2, 3, 120, 200)
    with torch.no_grad():
        expected = model(x)
        outputs = model.cuda()(x.cuda())
        for want, got in zip(expected, outputs):
            assert torch.allclose(want, got.cpu(), atol=1e-4, rtol=1e-4)
        # weights changed in place in eval mode (an EMA swap) take effect
        for p in model.parameters():
            p.data.mul_(0.5)
        changed = model(x.cuda())
    assert all(not torch.allclose(a, b) for a, b in zip(outputs, changed))
