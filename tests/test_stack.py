"""mmevit on the users' stacks (torch 2.1 to the newest): the version check
at import, safe checkpoint loading on every supported torch (what importing
mmevit changes in the process: test_import_changes.py), and the exporter's
torch requirement."""
import collections
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from mmevit.checkpoint import (
    CheckpointError,
    load_checkpoint_file,
    register_local_checkpoint_loader,
    safe_load,
)
from mmevit.stack import EXPORT_MIN_TORCH, installed_version, release, torch_at_least
from tests.helpers import Payload, run_tool_in_process

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RETINA_TOY = 'configs/toy/retinanet_efficientvit_m0_toy.py'


def python(script, env=None, path_first=None):
    """Run ``script`` in a fresh interpreter from the repository root."""
    env = dict(os.environ, **(env or {}))
    if path_first:
        env['PYTHONPATH'] = os.pathsep.join(
            [str(path_first), env.get('PYTHONPATH', '')])
    return subprocess.run([sys.executable, '-c', textwrap.dedent(script)],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_release_reads_local_and_pre_release_versions():
    assert release('2.1.2+cu121') == (2, 1, 2)
    assert release('2.0.0rc4') == (2, 0, 0)
    assert release('0.10.3') < release('0.10.10') < release('1.0')
    with pytest.raises(ValueError, match="'dev'"):
        release('dev')


@pytest.mark.parametrize('package,version,required', [
    ('torch', '2.0.1', '2.1'), ('mmengine', '0.9.1', '0.10.3'),
    ('mmcv', '1.7.2', '2.0.0')])
def test_an_unsupported_package_stops_the_import_in_one_line(
        tmp_path, package, version, required):
    """A distribution of ``package`` at ``version`` found first on the path
    (as an older install would be) stops ``import mmevit``."""
    dist_info = tmp_path / f'{package}-{version}.dist-info'
    dist_info.mkdir()
    (dist_info / 'METADATA').write_text(
        f'Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n')
    result = python('import mmevit', path_first=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f'ImportError: mmevit needs {package}>={required}, but {package} '
        f'{version} is installed')


@pytest.fixture(params=['weights_only', 'allowlist_pickle'])
def unpickler(request, monkeypatch):
    """Both of mmevit's restricted unpicklers, whatever this torch is: torch's
    own ``weights_only`` one (torch 2.6+) and :data:`ALLOWLIST_PICKLE`, the
    one torch < 2.6 loads through."""
    if request.param == 'weights_only':
        if not torch_at_least('2.6'):
            pytest.skip('torch < 2.6 cannot extend its weights_only unpickler')
    else:
        monkeypatch.setattr(safe_load, 'torch_loads_weights_only',
                            lambda: False)
    return request.param


NOT_ALLOWED = ('which is not an allowed checkpoint type (tensors, numpy '
               'arrays, mmengine HistoryBuffer)')


@pytest.mark.parametrize('payload,refused', [
    (lambda marker: Payload(os.system, f'touch {marker}'),
     f'system, {NOT_ALLOWED}'),
    (lambda marker: Payload(eval, f'open({str(marker)!r}, "w")'),
     f'eval, {NOT_ALLOWED}'),
    # getattr is allowed only for HistoryBuffer's public methods
    (lambda marker: Payload(getattr, collections.OrderedDict, 'update'),
     "getattr(<class 'collections.OrderedDict'>, 'update') is not allowed"),
    (lambda marker: Payload(getattr, HistoryBuffer, '__init__'),
     "getattr(<class 'mmengine.logging.history_buffer.HistoryBuffer'>, "
     "'__init__') is not allowed"),
    (lambda marker: Payload(getattr, HistoryBuffer, 'no_such_method'),
     "getattr(<class 'mmengine.logging.history_buffer.HistoryBuffer'>, "
     "'no_such_method') is not allowed"),
])
def test_a_hostile_checkpoint_is_refused_before_it_runs(tmp_path, payload,
                                                        refused, unpickler):
    marker = tmp_path / 'ran'
    path = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': {'hook': payload(marker)}}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert message.startswith(f'refused to load {path}: ')
    assert refused in message
    assert '\n' not in message
    assert not marker.exists()


@pytest.mark.parametrize('zip_format', [True, False])
def test_runner_checkpoint_types_load_on_this_torch(tmp_path, unpickler,
                                                    zip_format):
    """What mmengine's Runner pickles: its message hub's HistoryBuffers,
    numpy arrays, dtypes and scalars, in torch's zip format and in the
    legacy one of files saved before torch 1.6."""
    hub = MessageHub.get_instance('test_stack')
    for value in (0.5, np.float32(0.25), np.int64(3)):
        hub.update_scalar('train/loss', value)
    hub.update_info('seeds', np.arange(3, dtype=np.int16))
    saved = {'state_dict': {'w': torch.arange(4.),
                            'p': torch.nn.Parameter(torch.ones(2))},
             'meta': {'message_hub': hub.state_dict(), 'seed': np.int64(7),
                      'dtype': np.dtype('float32')}}
    torch.save(saved, tmp_path / 'iter_1.pth',
               _use_new_zipfile_serialization=zip_format)
    loaded = load_checkpoint_file(tmp_path / 'iter_1.pth')
    buffer = loaded['meta']['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx((0.5 + 0.25 + 3) / 3)
    assert loaded['meta']['message_hub']['runtime_info']['seeds'].tolist() \
        == [0, 1, 2]
    assert loaded['meta']['seed'] == 7
    assert loaded['meta']['dtype'] == np.float32
    assert torch.equal(loaded['state_dict']['w'], torch.arange(4.))
    assert isinstance(loaded['state_dict']['p'], torch.nn.Parameter)


def test_readme_support_table_names_the_installed_stack():
    """The support table of docs/get_started.md lists the versions this
    suite runs on."""
    with open(osp.join(ROOT, 'docs', 'get_started.md')) as f:
        readme = f.read()
    table = readme[readme.index('## Tested stacks'):]
    table = table[:table.index('\n\n', table.index('|'))]
    rows = [line for line in table.splitlines() if line.startswith('|')]
    for package in ('torch', 'numpy', 'mmcv', 'mmengine', 'mmdet',
                    'mmsegmentation'):
        version = release(installed_version(package))
        shown = '.'.join(map(str, version))
        assert any(shown in row for row in rows), (package, shown)


@pytest.mark.skipif(torch_at_least(EXPORT_MIN_TORCH),
                    reason=f'the exporter runs on torch>={EXPORT_MIN_TORCH}')
def test_export_on_an_older_torch_stops_with_one_line(monkeypatch, capsys,
                                                      tmp_path):
    out = tmp_path / 'model.onnx'
    status = run_tool_in_process(monkeypatch, 'deploy', RETINA_TOY,
                                 'missing.pth', '--out', out)
    assert status == 2
    err = capsys.readouterr().err
    assert err == (f'error: ONNX export needs torch>={EXPORT_MIN_TORCH} '
                   '(torch.export and its ONNX exporter); torch '
                   f'{torch.__version__} is installed. Running an existing '
                   '.onnx file works on this torch\n')
    assert not out.exists()


def segmentor_onnx(path, num_classes):
    """A minimal file of the segmentor contract (a 1x1 convolution to
    ``seg_logits``), written with onnx's own helpers: no torch exporter."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    weight = np.random.default_rng(0).normal(
        size=(num_classes, 3, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node('Conv', ['input', 'weight'], ['seg_logits'])],
        'segmentor',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                       ['N', 3, 'H', 'W'])],
        [helper.make_tensor_value_info('seg_logits', TensorProto.FLOAT,
                                       ['N', num_classes, 'H', 'W'])],
        [numpy_helper.from_array(weight, 'weight')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])
    model.ir_version = 8
    helper.set_model_props(model, {'mmevit_task': 'mmseg',
                                   'num_classes': str(num_classes)})
    onnx.save(model, str(path))


def test_an_onnx_file_runs_on_every_supported_torch(tmp_path):
    """tools/test.py evaluates an .onnx file in onnxruntime without
    importing the exporter (on torch 2.1 it could not be imported)."""
    from mmengine.config import Config

    from mmevit.tools.toy_shapes import make_ade20k_toy
    config = 'configs/toy/fpn_efficientvit_m0_toy_ade20k.py'
    data = make_ade20k_toy(str(tmp_path / 'ade'), num_train=2, num_val=2,
                           min_size=64, max_size=96, show_progress=False)
    path = tmp_path / 'segmentor.onnx'
    segmentor_onnx(path, Config.fromfile(config).model.decode_head.num_classes)
    options = [f'{split}_dataloader.{key}={value}'
               for split in ('val', 'test') for key, value in (
                   ('dataset.data_root', data['data_root']),
                   ('num_workers', 0), ('persistent_workers', False))]
    script = f'''
        import sys, runpy
        sys.argv = ['tools/test.py', {config!r}, {str(path)!r},
                    '--work-dir', {str(tmp_path / 'work')!r},
                    '--cfg-options', *{options!r}]
        try:
            runpy.run_path('tools/test.py', run_name='__main__')
        finally:
            print('exporter imported:', 'mmevit.deploy.export' in sys.modules)
    '''
    result = python(script, env={'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'mIoU' in result.stdout + result.stderr
    assert 'exporter imported: False' in result.stdout


def test_mmengine_reads_local_files_through_the_restricted_unpickler(
        tmp_path, monkeypatch):
    """What ``import mmevit`` sets up on torch 2.6+ (called here on any
    torch): mmengine's reads of local files (``load_from``, ``--resume``,
    ``init_cfg``) go through :func:`load_checkpoint_file`, with the caller's
    ``map_location``."""
    from mmengine.runner import CheckpointLoader
    monkeypatch.setattr(CheckpointLoader, '_schemes',
                        CheckpointLoader._schemes.copy())
    register_local_checkpoint_loader()
    good, hostile = tmp_path / 'epoch_1.pth', tmp_path / 'epoch_2.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, good)
    torch.save({'meta': Payload(os.system, 'true')}, hostile)
    loaded = CheckpointLoader.load_checkpoint(str(good), map_location='meta')
    assert loaded['state_dict']['w'].device.type == 'meta'
    with pytest.raises(CheckpointError, match='refused to load'):
        CheckpointLoader.load_checkpoint(str(hostile))
