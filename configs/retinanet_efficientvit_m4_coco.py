# RetinaNet 1x with EfficientViT-M4 (the paper's COCO recipe).
# Differs from the mmdet base only in backbone, neck and optimizer.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmevit'], allow_failed_imports=False)

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth'  # noqa: E501
model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m4',
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=True,  # the official code keeps backbone BN frozen
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[128, 256, 384],
        out_channels=256,
        num_outs=5,
        num_extra_trans_convs=1,  # strides 8, 16, 32, 64, 128
        add_extra_convs='on_input'))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
# 8 GPUs x 2 images, as in the paper; --auto-scale-lr adapts the lr.
auto_scale_lr = dict(enable=False, base_batch_size=16)
