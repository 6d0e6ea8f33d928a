"""The onnxruntime side of deployment on small files that follow the
contract of an exported one (mmevit.deploy.contract): which codebase a file
imports, the execution providers, and the mask paste against mmdet's."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmengine.config import Config
from onnx import TensorProto, helper

from mmevit.deploy import init_onnx_model
from mmevit.deploy.session import OnnxSession
from mmevit.errors import ConfigError
from tests.helpers import (
    FPN_TOY,
    RETINA_TOY,
    ROOT,
    det_options,
    run_test_tool,
    run_tool_in_process,
)


def save(graph, path, task, num_classes):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])
    meta = {'mmevit_task': task, 'num_classes': str(num_classes),
            'dataset_meta': json.dumps({'classes': [f'c{i}' for i in range(num_classes)]})}
    helper.set_model_props(model, meta)
    onnx.save(model, str(path))
    return str(path)


def detector_file(path):
    """A detector file without detections: ``dets`` (N, 1, 5) zeros,
    ``labels`` (N, 1) -1 (padding)."""
    batch = [helper.make_node('Shape', ['input'], ['shape'], end=1),
             helper.make_node('Concat', ['shape', 'one_five'], ['dets_shape'], axis=0),
             helper.make_node('Concat', ['shape', 'one'], ['labels_shape'], axis=0),
             helper.make_node('ConstantOfShape', ['dets_shape'], ['dets'],
                              value=helper.make_tensor('', TensorProto.FLOAT, [1], [0.])),
             helper.make_node('ConstantOfShape', ['labels_shape'], ['labels'],
                              value=helper.make_tensor('', TensorProto.INT64, [1], [-1]))]
    graph = helper.make_graph(
        batch, 'detector',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 3, 'H', 'W']),
         helper.make_tensor_value_info('image_size', TensorProto.INT64, ['N', 2])],
        [helper.make_tensor_value_info('dets', TensorProto.FLOAT, ['N', 1, 5]),
         helper.make_tensor_value_info('labels', TensorProto.INT64, ['N', 1])],
        [helper.make_tensor('one_five', TensorProto.INT64, [2], [1, 5]),
         helper.make_tensor('one', TensorProto.INT64, [1], [1])])
    return save(graph, path, 'mmdet', 3)


def segmentor_file(path):
    """A segmentor file: ``seg_logits`` a fixed 1x1 convolution (4 classes)
    of the input."""
    weight = np.arange(12, dtype=np.float32).reshape(4, 3, 1, 1) - 6
    graph = helper.make_graph(
        [helper.make_node('Conv', ['input', 'weight'], ['seg_logits'])], 'segmentor',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 3, 'H', 'W'])],
        [helper.make_tensor_value_info('seg_logits', TensorProto.FLOAT, ['N', 4, 'H', 'W'])],
        [helper.make_tensor('weight', TensorProto.FLOAT, weight.shape, weight.ravel())])
    return save(graph, path, 'mmseg', 4)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    work = tmp_path_factory.mktemp('contract_files')
    return {'mmdet': (RETINA_TOY, detector_file(work / 'det.onnx')),
            'mmseg': (FPN_TOY, segmentor_file(work / 'seg.onnx'))}


def imported_codebases(code):
    """The codebases (mmdet, mmseg) and mmevit's onnxruntime models in
    ``sys.modules`` after running ``code`` in a fresh interpreter."""
    code += ('\nimport sys; print(sorted(m for m in ("mmdet", "mmseg", '
             '"mmevit.deploy.onnx_detector", "mmevit.deploy.onnx_segmentor") '
             'if m in sys.modules))')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


RUN_FILE = ('import numpy as np\n'
            'from mmevit.deploy import inference_onnx, init_onnx_model\n'
            'model = init_onnx_model({config!r}, {onnx!r})\n'
            'inference_onnx(model, np.zeros((40, 50, 3), np.uint8))\n')


def test_a_detector_file_runs_without_mmseg(files):
    config, onnx_file = files['mmdet']
    assert imported_codebases(RUN_FILE.format(config=config, onnx=onnx_file)) == \
        "['mmdet', 'mmevit.deploy.onnx_detector']"


def test_a_segmentor_file_imports_mmdet_only_where_mmseg_does(files):
    """mmseg's own models import mmdet's Mask2Former head when mmdet is
    installed: the segmentor path imports mmdet exactly when mmseg's
    register_all_modules and inference API do, and never mmevit's
    detector."""
    config, onnx_file = files['mmseg']
    mmseg_alone = imported_codebases(
        'from mmseg.utils import register_all_modules\n'
        'register_all_modules()\nimport mmseg.apis')
    expected = sorted(eval(mmseg_alone) + ['mmevit.deploy.onnx_segmentor'])
    assert imported_codebases(RUN_FILE.format(config=config, onnx=onnx_file)) == \
        str(expected)


def test_importing_mmevit_deploy_registers_nothing():
    assert imported_codebases('import mmevit.deploy') == '[]'


@pytest.mark.parametrize('task', ['mmdet', 'mmseg'])
def test_an_unavailable_provider_is_named_with_the_available_ones(files, task):
    config, onnx_file = files[task]
    available = ort.get_available_providers()
    with pytest.raises(ConfigError) as error:
        init_onnx_model(config, onnx_file, providers=['NoSuchExecutionProvider'])
    assert str(error.value) == (
        "onnxruntime execution provider 'NoSuchExecutionProvider' is not "
        f'available; this onnxruntime has {", ".join(available)}')


@pytest.mark.parametrize('task', ['mmdet', 'mmseg'])
def test_the_users_providers_reach_the_session(files, task):
    """The session runs on the providers asked for, in their order (the
    default is CPU only)."""
    config, onnx_file = files[task]
    wanted = list(reversed(ort.get_available_providers()))
    model = init_onnx_model(Config.fromfile(config), onnx_file, providers=wanted)
    assert model.session.session.get_providers() == wanted
    default = init_onnx_model(Config.fromfile(config), onnx_file)
    assert default.session.session.get_providers() == ['CPUExecutionProvider']


@pytest.mark.parametrize('task', ['mmdet', 'mmseg'])
def test_idle_onnxruntime_threads_sleep_unless_asked_to_spin(files, task):
    """A file run by mmevit alternates with PyTorch pre/post-processing:
    its idle onnxruntime threads must not busy-wait on those cores."""
    config, onnx_file = files[task]

    def spinning(session):
        options = session.session.get_session_options()
        try:
            return options.get_session_config_entry('session.intra_op.allow_spinning') != '0'
        except RuntimeError:  # not set: onnxruntime's default, spinning
            return True

    model = init_onnx_model(Config.fromfile(config), onnx_file)
    assert not spinning(model.session)
    assert spinning(OnnxSession(onnx_file, task, 2, spinning=True))


def test_tools_test_runs_a_file_of_a_config_with_an_ema_hook(files, toy_coco, tmp_path):
    """RTMDet configs average weights with an EMAHook; a file holds its
    weights, so the hook must not try to copy the onnxruntime model."""
    _, onnx_file = files['mmdet']
    config = osp.join(ROOT, 'configs/toy/rtmdet_efficientvit_m0_toy.py')
    assert any(hook['type'] == 'EMAHook' for hook in Config.fromfile(config).custom_hooks)
    metrics = run_test_tool(config, onnx_file, det_options(toy_coco), tmp_path)
    assert metrics == {}  # it ran; the file detects nothing, so CocoMetric reports none


def test_tools_name_a_bad_provider_in_one_error_line(files, tmp_path, monkeypatch, capsys):
    config, onnx_file = files['mmseg']
    assert run_tool_in_process(monkeypatch, 'test', config, onnx_file, '--work-dir', tmp_path,
                               '--onnx-providers', 'NoSuchExecutionProvider') == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert line.startswith("error: onnxruntime execution provider 'NoSuchExecutionProvider' "
                           'is not available; this onnxruntime has ')


def test_providers_with_a_pytorch_checkpoint_are_refused(tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    assert run_tool_in_process(monkeypatch, 'test', FPN_TOY, checkpoint, '--work-dir', tmp_path,
                               '--onnx-providers', 'CPUExecutionProvider') == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert line == (f'error: --onnx-providers runs an .onnx checkpoint; {checkpoint} '
                    'is not one')


@st.composite
def masks_in_boxes(draw):
    """Probability maps (D, 28, 28), boxes inside a 30x40 resized image,
    the scale factor to the original image and mmdet's options."""
    count = draw(st.integers(1, 4))
    corners = draw(st.lists(st.tuples(st.floats(0, 38), st.floats(0, 28),
                                      st.floats(0.5, 20), st.floats(0.5, 20)),
                            min_size=count, max_size=count))
    boxes = torch.tensor([[x, y, min(x + w, 40.), min(y + h, 30.)]
                          for x, y, w, h in corners])
    seed = draw(st.integers(0, 2 ** 16))
    probs = torch.rand((count, 28, 28), generator=torch.Generator().manual_seed(seed))
    return dict(probs=probs, boxes=boxes,
                scale=draw(st.sampled_from([(1., 1.), (0.5, 0.75), (1.25, 2.)])),
                threshold=draw(st.sampled_from([0.5, 0.2, -1.])),
                rescale=draw(st.booleans()))


@settings(max_examples=15, deadline=None, derandomize=True)
@given(case=masks_in_boxes())
def test_pasted_masks_are_mmdets(files, case):
    """OnnxDetector pastes the file's probability maps as
    ``FCNMaskHead.predict_by_feat`` does with maps already activated, for
    every option it reads: ``mask_thr_binary`` (binary or uint8 maps),
    ``rescale`` and the image's ``scale_factor``."""
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    _, onnx_file = files['mmdet']
    model = init_onnx_model(RETINA_TOY, onnx_file)
    model.mask_thr_binary = case['threshold']
    width_scale, height_scale = case['scale']
    sample = DetDataSample(metainfo=dict(
        ori_shape=(round(30 / height_scale), round(40 / width_scale)),
        img_shape=(30, 40), scale_factor=case['scale']))
    boxes = case['boxes']  # in the resized image
    if case['rescale']:
        boxes = boxes / boxes.new_tensor(case['scale']).repeat(2)
    masks = model._paste_masks(case['probs'], boxes, sample, case['rescale'])
    head = FCNMaskHead(num_convs=0, in_channels=8, conv_out_channels=8,
                       num_classes=3, class_agnostic=True)
    [expected] = head.predict_by_feat(
        (case['probs'][:, None], ),
        [InstanceData(bboxes=case['boxes'].clone(),
                      labels=torch.zeros(len(boxes), dtype=torch.long))],
        [sample.metainfo], Config(dict(mask_thr_binary=case['threshold'])),
        rescale=case['rescale'], activate_map=True)
    assert masks.dtype == expected.masks.dtype
    assert torch.equal(masks, expected.masks)
