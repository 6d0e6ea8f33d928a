# Swap example: EfficientViT-M4 dropped into mmseg's stock UPerNet.
# Only the backbone, model.pretrained (the base's ResNet weights), a neck
# giving UPerNet its strides 4..32, the heads' in_channels and the optimizer
# change; decode head, data and schedule are UPerNet's own.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmevit'], allow_failed_imports=False)

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth'  # noqa: E501
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m4',
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        type='EfficientViTFPN',
        in_channels=[128, 256, 384],
        out_channels=256,
        num_outs=4,
        num_extra_trans_convs=2),  # strides 4, 8, 16, 32, as ResNet's
    decode_head=dict(in_channels=[256, 256, 256, 256]),
    auxiliary_head=dict(in_channels=256))  # in_index 2: stride 16

# mmevit's Semantic FPN recipe (AdamW) in place of the base's SGD
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
# UPerNet's recipe batch, 4 GPUs x 4 images (mmseg's configs set none)
auto_scale_lr = dict(enable=False, base_batch_size=16)
