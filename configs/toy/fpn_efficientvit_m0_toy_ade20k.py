# EfficientViT-M0 Semantic FPN trained from scratch on the synthetic
# ADE20K-layout shapes of `python tools/data/make_toy_data.py ade20k data/toy_ade20k`
# (the segmentation learnability benchmark in docs/benchmarks.md).
_base_ = '../fpn_efficientvit_m0_ade20k.py'

data_root = 'data/toy_ade20k/'
# Classes after reduce_zero_label (label 0 of the PNGs, the shape borders,
# becomes 255 and is ignored).
metainfo = dict(
    classes=('ground', 'circle', 'square', 'triangle'),
    palette=[(150, 120, 80), (220, 40, 40), (40, 190, 70), (50, 80, 230)])
crop_size = (256, 256)
img_scale = (1024, 256)  # the (2048, 512) of ADE20K, halved for 256-384 px images

# Neck width 128 and FPNHead channels 64, half those of the ADE20K configs:
# CPU training runs about 3x faster.
width = 128

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None, norm_eval=False),  # from scratch: train BN
    neck=dict(out_channels=width),
    decode_head=dict(in_channels=[width] * 4, channels=width // 2,
                     num_classes=4))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='images/training',
                         seg_map_path='annotations/training'),
        pipeline=train_pipeline,
        **dataset))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'),
        pipeline=test_pipeline,
        **dataset))
test_dataloader = val_dataloader

max_iters = 160
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', power=0.9, eta_min=0., by_epoch=False, begin=20,
         end=max_iters)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
# one process x 8 images
auto_scale_lr = dict(enable=False, base_batch_size=8)
# `tools/test.py --tta`: mmseg's multi-scale and flip test around the toy
# test size
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[
             [dict(type='Resize', scale=img_scale, keep_ratio=True),
              dict(type='Resize', scale_factor=1.25, keep_ratio=True)],
             [dict(type='RandomFlip', prob=0., direction='horizontal'),
              dict(type='RandomFlip', prob=1., direction='horizontal')],
             [dict(type='LoadAnnotations', reduce_zero_label=True)],
             [dict(type='PackSegInputs')]])
]
