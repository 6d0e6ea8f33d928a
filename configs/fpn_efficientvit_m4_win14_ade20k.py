# EfficientViT-M4 Semantic FPN with a 14x14 attention window in the last
# stage (global attention on 512x512 crops, where that stage is 8x8). The
# ImageNet bias tables (4x4 offsets there) are resized bicubically to 14x14.
_base_ = './fpn_efficientvit_m4_ade20k.py'

model = dict(backbone=dict(window_sizes=(7, 7, 14)))
