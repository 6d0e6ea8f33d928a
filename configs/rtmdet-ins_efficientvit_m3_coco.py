# EfficientViT-M3 RTMDet-Ins on mmdet's RTMDet-Ins-s recipe: the s recipe
# differs from tiny in its backbone and neck (replaced here), its 128-channel
# neck and head, and its cached Mosaic/MixUp sizes and pipeline switch.
_base_ = 'mmdet::rtmdet/rtmdet-ins_s_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmevit'], allow_failed_imports=False)

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m3.pth'  # noqa: E501
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m3',
        out_indices=(0, 1, 2),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[128, 240, 320],
        out_channels=128,
        num_outs=3,
        num_extra_trans_convs=1,
        norm_cfg=dict(type='SyncBN'),
        act_cfg=dict(type='SiLU')),
    bbox_head=dict(in_channels=128, feat_channels=128))

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
auto_scale_lr = dict(base_batch_size=256)
