_base_ = './rtmdet_efficientvit_m0_coco.py'

checkpoint = 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m3.pth'  # noqa: E501
# RTMDet-s's neck and head width (128) for the larger archs
model = dict(
    backbone=dict(arch='m3', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(out_channels=128, in_channels=[128, 240, 320]),
    bbox_head=dict(in_channels=128, feat_channels=128))
