# Stock mmdet RetinaNet-R18 (ResNet-18 + FPN, from scratch) with exactly the
# data, head, schedule and optimizer of retinanet_efficientvit_m0_toy.py:
# the baseline of the learnability benchmark in docs/benchmarks.md.
_base_ = './retinanet_efficientvit_m0_toy.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[64, 128, 256, 512],
        out_channels=128,
        start_level=1,
        add_extra_convs='on_input',
        num_outs=5))
