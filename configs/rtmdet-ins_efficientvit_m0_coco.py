# RTMDet-Ins (mmdet's 300-epoch tiny recipe: data pipeline, head with its
# mask branch, assigner, EMA, schedule) with an EfficientViT-M0 backbone.
# Differs from the base only where the backbone requires it: backbone, neck,
# RGB input normalization and the optimizer's no-decay keys; and
# auto_scale_lr's base batch, the recipe's 8 GPUs x 32 images (mmdet's
# RTMDet configs inherit 16 from schedule_1x).
_base_ = 'mmdet::rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmevit'], allow_failed_imports=False)

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m0.pth'  # noqa: E501
model = dict(
    # the ImageNet weights expect RGB with ImageNet mean/std (the base
    # normalizes BGR for CSPNeXt)
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m0',
        out_indices=(0, 1, 2),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    # EfficientViT's strides 16/32/64 -> the head's 8/16/32 (the mask
    # prototypes come from the stride-8 level): the neck of
    # rtmdet_efficientvit_m0_coco.py, top-down FPN plus one transposed conv
    # for stride 8, with the base neck's BN and SiLU.
    neck=dict(
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[64, 128, 192],
        out_channels=96,
        num_outs=3,
        num_extra_trans_convs=1,
        norm_cfg=dict(type='SyncBN'),
        act_cfg=dict(type='SiLU')),
    bbox_head=dict(in_channels=96, feat_channels=96))

# RTMDet's paramwise settings, plus no decay on the attention bias tables
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
auto_scale_lr = dict(base_batch_size=256)
