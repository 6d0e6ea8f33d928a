# Stock mmdet RTMDet-Ins-tiny (CSPNeXt + CSPNeXtPAFPN, from scratch) with exactly
# the data, head, schedule and optimizer of rtmdet-ins_efficientvit_m0_toy.py: the
# baseline of the real-time instance segmentation learnability run in
# docs/rtmdet_ins.md.
_base_ = './rtmdet-ins_efficientvit_m0_toy.py'

model = dict(
    data_preprocessor=dict(
        mean=[103.53, 116.28, 123.675],
        std=[57.375, 57.12, 58.395],
        bgr_to_rgb=False),
    backbone=dict(
        _delete_=True,
        type='CSPNeXt',
        arch='P5',
        expand_ratio=0.5,
        deepen_factor=0.167,
        widen_factor=0.375,
        channel_attention=True,
        norm_cfg=dict(type='SyncBN'),
        act_cfg=dict(type='SiLU', inplace=True),
        init_cfg=None),
    neck=dict(
        _delete_=True,
        type='CSPNeXtPAFPN',
        in_channels=[96, 192, 384],
        out_channels=96,
        num_csp_blocks=1,
        expand_ratio=0.5,
        norm_cfg=dict(type='SyncBN'),
        act_cfg=dict(type='SiLU', inplace=True)))
