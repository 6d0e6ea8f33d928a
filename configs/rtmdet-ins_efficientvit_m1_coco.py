_base_ = './rtmdet-ins_efficientvit_m0_coco.py'

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m1.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='m1', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[128, 144, 192]))
