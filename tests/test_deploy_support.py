"""What the exporter refuses: heads outside its lists and settings under
which mmdet would compute something else than the exported graph, each
named in the error with what is supported."""
import pytest

from tests.helpers import MASK_TOY, RETINA_TOY, det_options, skip_module_without_exporter

skip_module_without_exporter()

from mmevit.deploy import export_wrapper  # noqa: E402
from mmevit.errors import ConfigError  # noqa: E402
from mmevit.tools import build_model  # noqa: E402

GFL_HEAD = dict(_delete_=True, type='GFLHead', num_classes=3, in_channels=128,
                feat_channels=128, stacked_convs=2,
                anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8,
                                      scales_per_octave=1, strides=[8, 16, 32, 64, 128]))


@pytest.mark.parametrize('options, named', [
    ({'model.test_cfg.nms.class_agnostic': True},
     'RetinaHead with test_cfg.nms.class_agnostic=True'),
    ({'model.test_cfg.nms.offset': 1}, 'RetinaHead with test_cfg.nms.offset=1'),
    ({'model.bbox_head.bbox_coder.clip_border': False},
     'RetinaHead with bbox_coder.clip_border=False'),
    ({'model.bbox_head': GFL_HEAD}, 'GFLHead'),
])
def test_unsupported_dense_detector_is_named(toy_coco, options, named):
    _, task, model = build_model(RETINA_TOY, {**det_options(toy_coco), **options})
    with pytest.raises(ConfigError) as error:
        export_wrapper(task, model)
    assert str(error.value).startswith(
        f'cannot export {named}: the exporter supports mmdet single-stage detectors with '
        'RetinaHead, ATSSHead, FCOSHead, RTMDetHead, RTMDetSepBNHead; ')


TWO_STAGE = ("mmdet two-stage detectors with RPNHead and StandardRoIHead (BBoxHead, "
             "ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead; FCNMaskHead or none; ")


@pytest.mark.parametrize('options, named', [
    ({'model.rpn_head.bbox_coder.clip_border': False},
     'RPNHead with bbox_coder.clip_border=False'),
    ({'model.roi_head.bbox_head.bbox_coder.clip_border': False},
     'Shared2FCBBoxHead with bbox_coder.clip_border=False'),
    ({'model.roi_head.mask_head.type': 'HTCMaskHead'}, 'HTCMaskHead'),
    ({'model.test_cfg.rpn.nms.type': 'soft_nms'},
     "StandardRoIHead with test_cfg.rpn.nms.type='soft_nms'"),
    ({'model.test_cfg.rcnn.nms.class_agnostic': True},
     'StandardRoIHead with test_cfg.rcnn.nms.class_agnostic=True'),
])
def test_unsupported_two_stage_detector_is_named(toy_coco, options, named):
    _, task, model = build_model(MASK_TOY, {**det_options(toy_coco), **options})
    with pytest.raises(ConfigError) as error:
        export_wrapper(task, model)
    message = str(error.value)
    assert message.startswith(f'cannot export {named}: the exporter supports ')
    assert TWO_STAGE in message


@pytest.mark.parametrize('with_mask', [True, False])
def test_supported_two_stage_detectors_export_their_outputs(toy_coco, with_mask):
    options = {} if with_mask else {'model.roi_head.mask_head': None,
                                    'model.roi_head.mask_roi_extractor': None}
    _, task, model = build_model(MASK_TOY, {**det_options(toy_coco), **options})
    wrapper = export_wrapper(task, model)
    assert wrapper.output_names == ('dets', 'labels', 'masks')[:3 if with_mask else 2]
