_base_ = './rtmdet-ins_efficientvit_m3_coco.py'  # RTMDet-Ins-s recipe and widths

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m5.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='m5', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[192, 288, 384]))
