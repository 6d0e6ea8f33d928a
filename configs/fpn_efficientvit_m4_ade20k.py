# Semantic FPN with EfficientViT-M4 on ADE20K, on the protocol of PVT,
# PoolFormer and EfficientFormer: 512x512 crops from (2048, 512) rescaled by
# 0.5-2.0, flip, photometric distortion; AdamW lr 2e-4, weight decay 1e-4,
# poly schedule over 40k iterations; batch 32 (8 GPUs x 4); single-scale test.
# Differs from mmseg's Semantic FPN on ADE20K only in backbone, neck, test
# input padding, optimizer and schedule (40k instead of 160k iterations).
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmevit'], allow_failed_imports=False)

crop_size = (512, 512)
# Training crops are padded to crop_size. Test images are padded at the
# bottom/right to a multiple of the backbone's stride 64 (so every pyramid
# level aligns); predictions are cropped back and resized to the original
# image size.
data_preprocessor = dict(size=crop_size, test_cfg=dict(size_divisor=64))
checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth'  # noqa: E501
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m4',
        window_sizes=(7, 7, 7),
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=True,  # backbone BN is per GPU (4 crops): keep ImageNet stats
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[128, 256, 384],
        out_channels=256,
        num_outs=4,
        num_extra_trans_convs=2),  # strides 4, 8, 16, 32 for FPNHead
    decode_head=dict(num_classes=150))

# Fail early, naming the file, on missing label maps, labels outside the
# classes (other than 255) and a decode head num_classes that differs from
# the dataset's classes.
custom_hooks = [dict(type='SegDataCheckHook')]

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
max_iters = 40000
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
# 8 GPUs x 4 images (train_dataloader.batch_size=4 from the base);
# --auto-scale-lr adapts the lr to other batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=32)
