# RetinaNet with EfficientViT-M4 on mmdet's multi-scale 3x recipe
# (short side 640-800, the dataset repeated 3x within 12 epochs).
# Differs from the mmdet base only in backbone, neck and optimizer.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_ms-640-800-3x_coco.py'
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
        num_extra_trans_convs=1,
        add_extra_convs='on_input'))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
auto_scale_lr = dict(enable=False, base_batch_size=16)
