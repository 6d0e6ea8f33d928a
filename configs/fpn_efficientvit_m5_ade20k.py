_base_ = './fpn_efficientvit_m4_ade20k.py'

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m5.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='m5', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[192, 288, 384]))
