"""EfficientViT swapped into the user's installed stock mmdet and mmseg
configs with the lines docs/swap.md gives (its config blocks, run as they
are), and mmseg's ``pretrained`` on stock mmseg configs."""
import glob
import os.path as osp
import re
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, DefaultScope
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

import mmevit  # noqa: F401  (registers EfficientViT, as custom_imports does)
from mmevit.errors import CheckpointError, ConfigError
from mmevit.models import EfficientViT
from mmevit.tools import replace_sync_bn
from tests.helpers import ROOT, run_tool

DOCS = osp.join(ROOT, 'docs', 'swap.md')
SWAP_EXAMPLES = sorted(glob.glob(osp.join(ROOT, 'configs', 'swap', '*.py')))


@dataclass
class Family:
    """How the test runs one family's docs block.

    Args:
        task (str): 'det' or 'seg'.
        size (tuple[int, int]): Test image size, the smallest the family
            takes.
        masks (bool): Ground truth with instance masks. Defaults to False.
        strides (tuple[int]): Strides of the features the (decode) head
            takes with the docs' lines: the stock config's, but for DINO
            (docs/swap.md).
        test_only (dict): Settings for the test's tiny inputs only, not
            for users. Defaults to none.
    """
    task: str
    strides: tuple
    size: tuple = (64, 96)
    masks: bool = False
    test_only: dict = field(default_factory=dict)


R_CNN = (4, 8, 16, 32, 64)
DENSE = (8, 16, 32, 64, 128)
SEG = (4, 8, 16, 32)
# fewer RoIs per image than the stock 1000-2000: a tiny image has no more
# objects, and each RoI costs a 12544x1024 fc layer per stage
FEW_ROIS = {'model.train_cfg.rpn_proposal.max_per_img': 64,
            'model.test_cfg.rpn.max_per_img': 64}
FAMILIES = {
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py': Family(
        'det', R_CNN, test_only=FEW_ROIS),
    'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py': Family(
        'det', R_CNN, masks=True, test_only=FEW_ROIS),
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py': Family('det', DENSE),
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py': Family('det',
                                                                DENSE),
    'mmdet::atss/atss_r50_fpn_1x_coco.py': Family('det', DENSE),
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py': Family('det', DENSE),
    'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py': Family(
        'det', (4,)),
    # a 64x96 image gives 24 + 6 + 2 + 1 tokens, fewer than the 900 queries
    # DINO selects (docs/swap.md: 416x416 and larger images give 900)
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py': Family(
        'det', (16, 32, 64, 128), test_only={'model.num_queries': 30}),
    'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py': Family('det',
                                                          (8, 16, 32)),
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py': Family('seg', SEG),
    'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py': Family('seg', SEG),
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-80k_ade20k-512x512.py':
        Family('seg', (8,)),
    'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py': Family('seg', (8,)),
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py':
        Family('seg', SEG),
    # mask losses and matching costs on 256 points per mask, not 12544
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py':
        Family('seg', SEG, test_only={
            'model.decode_head.train_cfg.num_points': 256}),
}


def docs_config_blocks():
    """{base: block} of the ```python blocks of docs/swap.md that are
    configs over a stock mmdet or mmseg config."""
    with open(DOCS) as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    found = {}
    for block in blocks:
        base = re.search(r"^_base_ = '((?:mmdet|mmseg)::[^']+)'", block,
                         re.M)
        if base:
            found[base.group(1)] = block
    return found


BLOCKS = docs_config_blocks()


def load_block(block, tmp_path):
    path = tmp_path / 'swapped.py'
    path.write_text(block)
    return Config.fromfile(str(path))


def build(cfg):
    """The config's model, as mmengine's runner builds it: from the root
    registry, in the config's default scope."""
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


def imports_of(cfg):
    imports = cfg.get('custom_imports', {}).get('imports', [])
    return {imports} if isinstance(imports, str) else set(imports)


def test_docs_give_a_block_for_every_tested_family():
    assert sorted(BLOCKS) == sorted(FAMILIES)


def det_batch(family):
    """Two images with two boxes each (and their masks when the family
    has a mask head)."""
    h, w = family.size
    samples = []
    for _ in range(2):
        sample = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
            batch_input_shape=(h, w), scale_factor=(1., 1.),
            border=(0, h, 0, w)))
        boxes = torch.tensor([[4., 6., 40., 50.], [30., 20., 90., 60.]])
        gt = InstanceData(bboxes=boxes,
                          labels=torch.tensor([1, 0]))
        if family.masks:
            masks = np.zeros((2, h, w), np.uint8)
            for mask, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
                mask[y1:y2, x1:x2] = 1
            gt.masks = BitmapMasks(masks, h, w)
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=list(torch.rand(2, 3, h, w) * 255),
                data_samples=samples)


def seg_batch(family, num_classes):
    """Two images with random labels (and ignored pixels)."""
    h, w = family.size
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(h, w),
                                             ori_shape=(h, w)))
        labels = torch.randint(0, num_classes, (1, h, w))
        labels[:, :4] = 255
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return dict(inputs=list(torch.randint(0, 256, (2, 3, h, w))),
                data_samples=samples)


def head_input_strides(model):
    """Strides of the features the (decode) head takes."""
    size = 256  # a multiple of every stride
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, size, size))
    in_index = getattr(getattr(model, 'decode_head', None), 'in_index',
                       range(len(feats)))
    if isinstance(in_index, int):
        in_index = [in_index]
    return tuple(size // feats[i].shape[-1] for i in in_index)


def check_attention_biases_not_decayed(model, optim_cfg):
    """No weight decay on the attention bias tables, at the learning rate of
    the rest of the backbone."""
    optimizer = build_optim_wrapper(model, optim_cfg).optimizer
    group_of = {id(p): g for g in optimizer.param_groups for p in g['params']}
    backbone_lr = group_of[id(model.backbone.patch_embed.conv1.conv.weight)][
        'lr']
    biases = [p for n, p in model.backbone.named_parameters()
              if 'attention_biases' in n]
    assert biases
    for param in biases:
        assert group_of[id(param)]['weight_decay'] == 0
        assert group_of[id(param)]['lr'] == backbone_lr


@pytest.mark.parametrize('base', FAMILIES, ids=lambda b: b.split('/')[0])
def test_docs_lines_swap_into_stock_config(base, tmp_path):
    family = FAMILIES[base]
    cfg = load_block(BLOCKS[base], tmp_path)
    # the block's custom_imports replace the base's: it must keep them
    stock = load_block(f"_base_ = '{base}'\n", tmp_path)
    assert imports_of(stock) | {'mmevit'} <= imports_of(cfg)
    # test-only: no checkpoint offline, one process (BN for SyncBN), tiny
    # images (mmseg pads training batches to the crop size)
    cfg.model.backbone.init_cfg = None
    cfg.merge_from_dict(family.test_only)
    if family.task == 'seg':
        cfg.model.data_preprocessor.size = family.size
    replace_sync_bn(cfg.model)
    torch.manual_seed(0)
    model = build(cfg)
    model.init_weights()
    assert isinstance(model.backbone, EfficientViT)
    check_attention_biases_not_decayed(model, cfg.optim_wrapper)
    model.eval()
    assert head_input_strides(model) == family.strides
    if family.task == 'det':
        make_batch = det_batch
    else:
        num_classes = model.decode_head.num_classes
        make_batch = partial(seg_batch, num_classes=num_classes)

    model.train()
    data = model.data_preprocessor(make_batch(family), True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    assert torch.isfinite(loss)
    loss.backward()
    first = model.backbone.patch_embed.conv1.conv.weight.grad
    assert first is not None and first.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(make_batch(family), False)
        results = model(**data, mode='predict')
    h, w = family.size
    for result in results:
        if family.task == 'seg':
            assert result.pred_sem_seg.shape == (h, w)
            assert result.seg_logits.data.shape == (num_classes, h, w)
            continue
        pred = result.pred_instances
        assert pred.bboxes.ndim == 2 and pred.bboxes.shape[1] == 4
        assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        if family.masks:
            assert pred.masks.shape == (len(pred.bboxes), h, w)



@pytest.mark.parametrize('path', SWAP_EXAMPLES, ids=osp.basename)
def test_swap_example_configs_hold_the_docs_lines(path, tmp_path):
    """A configs/swap/ file's model is its family's docs block's (the files
    replace the base's optimizer with AdamW, too)."""
    with open(path) as f:
        base = re.search(r"^_base_ = '([^']+)'", f.read(), re.M)[1]
    docs = load_block(BLOCKS[base], tmp_path)
    assert Config.fromfile(path).model == docs.model


UPERNET = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
# mmseg configs whose model.pretrained is their ResNet's ImageNet weights
RESNET_BASES = [UPERNET,
                'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py',
                'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']


def backbone_only_swap(tmp_path, base=UPERNET, **config):
    """``base`` with only its backbone swapped for EfficientViT-M0, plus
    ``config`` (``model.pretrained`` and the like)."""
    block = (f"_base_ = '{base}'\n"
             "model = dict(backbone=dict(_delete_=True, type='EfficientViT', "
             "arch='m0'))\n")
    cfg = load_block(block, tmp_path)
    cfg.merge_from_dict(config)
    replace_sync_bn(cfg.model)
    return cfg


def one_line(err):
    message = str(err.value)
    assert '\n' not in message
    return message


@pytest.mark.parametrize('base', RESNET_BASES, ids=lambda b: b.split('/')[0])
def test_base_resnet_pretrained_stops_the_build_in_one_line(base, tmp_path):
    cfg = backbone_only_swap(tmp_path, base)
    assert cfg.model.pretrained == 'open-mmlab://resnet50_v1c'
    with pytest.raises(ConfigError) as err:
        build(cfg)
    message = one_line(err)
    assert "pretrained='open-mmlab://resnet50_v1c'" in message
    assert 'model.pretrained=None' in message


def test_train_tool_names_the_pretrained_fix_in_one_error_line(tmp_path):
    """``python tools/train.py`` on a stock mmseg config with only the
    backbone swapped (a user's first try)."""
    config = tmp_path / 'upernet_swapped.py'
    config.write_text(
        f"_base_ = '{UPERNET}'\n"
        "custom_imports = dict(imports=['mmevit'], "
        "allow_failed_imports=False)\n"
        "model = dict(backbone=dict(_delete_=True, type='EfficientViT', "
        "arch='m0'))\n")
    result = run_tool('tools/train.py', config, '--work-dir',
                      tmp_path / 'work_dir', check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in result.stderr
    assert lines[-1].startswith('error: ')
    assert "pretrained='open-mmlab://resnet50_v1c'" in lines[-1]
    assert 'model.pretrained=None' in lines[-1]


def test_pretrained_beside_backbone_init_cfg_stops_the_build(tmp_path):
    cfg = backbone_only_swap(tmp_path, **{
        'model.backbone.init_cfg': dict(type='Pretrained',
                                        checkpoint='efficientvit_m0.pth')})
    with pytest.raises(ConfigError) as err:
        build(cfg)
    message = one_line(err)
    assert 'both set' in message and 'model.pretrained=None' in message


def test_pretrained_must_be_a_path_or_url(tmp_path):
    cfg = backbone_only_swap(tmp_path, **{'model.pretrained': 3})
    with pytest.raises(ConfigError, match='pretrained=3 .* must be a '
                       'checkpoint path or URL'):
        build(cfg)


def test_pretrained_efficientvit_checkpoint_loads_strictly(tmp_path):
    source = EfficientViT('m0')
    for param in source.parameters():
        torch.nn.init.normal_(param)
    checkpoint = tmp_path / 'efficientvit_m0.pth'
    torch.save({'state_dict': source.state_dict()}, checkpoint)
    cfg = backbone_only_swap(tmp_path, **{'model.pretrained': str(checkpoint)})
    with pytest.warns(UserWarning, match='pretrained is deprecated'):
        model = build(cfg)
    assert model.backbone.init_cfg == dict(type='Pretrained',
                                           checkpoint=str(checkpoint))
    model.init_weights()
    loaded = model.backbone.state_dict()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded[key], value, msg=key)


def test_pretrained_resnet_checkpoint_is_refused_in_one_line(tmp_path):
    """The base's ResNet weights as a file (what open-mmlab://resnet50_v1c
    downloads) are refused when loaded, naming the file."""
    resnet = MODELS.build(dict(type='mmseg.ResNetV1c', depth=18))
    checkpoint = tmp_path / 'resnet18_v1c.pth'
    torch.save({'state_dict': resnet.state_dict()}, checkpoint)
    cfg = backbone_only_swap(tmp_path, **{'model.pretrained': str(checkpoint)})
    with pytest.warns(UserWarning, match='pretrained is deprecated'):
        model = build(cfg)
    with pytest.raises(CheckpointError) as err:
        model.init_weights()
    message = one_line(err)
    assert f'{checkpoint} does not fit EfficientViT arch m0' in message


SWAPPED_M0 = "_delete_=True, type='EfficientViT', arch='m0'"
# family: (stock config, the swap, error type, a fragment docs/swap.md quotes)
CANNOT = {
    'tridentnet': (
        'mmdet::tridentnet/tridentnet_r50-caffe_1x_coco.py',
        f"model = dict(backbone=dict({SWAPPED_M0}), neck=dict("
        "type='EfficientViTFPN', in_channels=[192], out_channels=1024, "
        "num_outs=1))",
        AttributeError, "'EfficientViT' object has no attribute 'num_branch'"),
    'detectors_rfp': (
        'mmdet::detectors/cascade-rcnn_r50-rfp_1x_coco.py',
        f"model = dict(backbone=dict({SWAPPED_M0}), "
        "neck=dict(in_channels=[64, 128, 192]))",
        AssertionError, 'len(inputs) == len(self.in_channels) + 1'),
    'bisenetv1': (
        'mmseg::bisenetv1/bisenetv1_r18-d32_4xb4-160k_cityscapes-1024x1024.py',
        f"model = dict(backbone=dict(backbone_cfg=dict({SWAPPED_M0})))",
        ValueError, 'not enough values to unpack (expected 4, got 3)'),
    'icnet': (
        'mmseg::icnet/icnet_r18-d8_4xb2-80k_cityscapes-832x832.py',
        f"model = dict(backbone=dict(backbone_cfg=dict({SWAPPED_M0})))",
        AttributeError, "'EfficientViT' object has no attribute 'stem'"),
    'dpt': (
        'mmseg::dpt/dpt_vit-b16_8xb2-160k_ade20k-512x512.py',
        f"model = dict(pretrained=None, backbone=dict({SWAPPED_M0}), "
        "neck=dict(type='EfficientViTFPN', in_channels=[64, 128, 192], "
        "out_channels=256, num_outs=4, num_extra_trans_convs=2), "
        "decode_head=dict(in_channels=(256, 256, 256, 256)))",
        AssertionError, 'assert len(x) == 2'),
}


@pytest.mark.parametrize('family', CANNOT)
def test_families_that_cannot_work_fail_as_the_docs_say(family, tmp_path):
    base, swap, error, quoted = CANNOT[family]
    with open(DOCS) as f:
        docs = f.read()
    assert f'`{base}' in docs or f"`{base.split('/')[0]}/" in docs
    assert quoted in docs
    cfg = load_block(f"_base_ = '{base}'\n{swap}\n", tmp_path)
    replace_sync_bn(cfg.model)
    with pytest.raises(error) as err:
        model = build(cfg).eval()
        with torch.no_grad():
            feats = model.extract_feat(torch.zeros(1, 3, 128, 128))
            if hasattr(model, 'decode_head'):
                model.decode_head(feats)
    if error is AssertionError:  # a bare assert: its statement
        assert quoted in str(err.traceback[-1].statement)
    else:
        assert quoted in str(err.value)
