# Swap example: EfficientViT-M4 dropped into mmdet's stock ATSS config.
# Only the backbone, the neck (in_channels, finer levels) and the optimizer
# change; head, assigner, data and schedule are ATSS's own.
_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmevit'], allow_failed_imports=False)

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth'  # noqa: E501
model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m4',
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[128, 256, 384],
        out_channels=256,
        num_outs=5,
        num_extra_trans_convs=1,  # strides 8..128, as ATSS's head expects
        add_extra_convs='on_output'))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
