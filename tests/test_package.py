"""What `pip install mmevit` installs: the library, configs and the train/test
tools, with the requirements that importing it really has."""
import ast
import json
import os.path as osp
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REQUIRES = {'torch>=2.1', 'mmcv>=2.0.0', 'mmengine>=0.10.3', 'numpy>=1.22'}


@pytest.fixture(scope='module')
def wheel(mmevit_wheel):
    with zipfile.ZipFile(mmevit_wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_installing_the_wheel_changes_nothing_the_user_has(mmevit_wheel):
    """`pip install mmevit` into this environment (which has torch, mmcv,
    mmdet and mmseg) would install mmevit alone. Offline (--no-index): a
    requirement the environment did not meet would fail the resolve."""
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index',
         '--quiet', '--report', '-', str(mmevit_wheel)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    installs = [item['metadata']['name'] for item in report['install']]
    assert installs == ['mmevit']


def test_wheel_holds_library_configs_and_run_tools_only(wheel):
    names = set(wheel)
    for needed in ('mmevit/registry.py', 'mmevit/errors.py',
                   'mmevit/models/backbones/efficientvit.py',
                   'mmevit/checkpoint/safe_load.py',
                   'mmevit/.mim/configs/retinanet_efficientvit_m4_coco.py',
                   'mmevit/.mim/configs/toy/retinanet_efficientvit_m0_toy.py',
                   'mmevit/.mim/tools/train.py', 'mmevit/.mim/tools/test.py',
                   'mmevit/.mim/tools/dist_train.sh',
                   'mmevit/.mim/tools/slurm_train.sh',
                   'mmevit/.mim/tools/slurm_test.sh',
                   'mmevit/.mim/model-index.yml',
                   'mmevit/.mim/configs/metafile.yml'):
        assert needed in names
    packages = {name.split('/')[1] for name in names
                if name.startswith('mmevit/') and name.count('/') > 1}
    # tools: what the tools share (mmevit.tools: measuring and toy data
    # included); the analysis and data scripts, the tests and the official
    # code they compare with stay in the repository
    assert packages == {'models', 'checkpoint', 'engine', 'deploy', 'tools',
                        '.mim'}
    for name in names:
        assert not any(part in name for part in (
            'analysis_tools', 'make_toy_data', 'tests/', 'official/')), name


def test_wheel_metadata_states_the_real_requirements(wheel):
    [metadata] = [v.decode() for k, v in wheel.items()
                  if k.endswith('.dist-info/METADATA')]
    fields = [tuple(line.split(': ', 1)) for line in metadata.splitlines()
              if ': ' in line and not line.startswith(' ')]
    requires = [value for key, value in fields if key == 'Requires-Dist']
    assert {r for r in requires if 'extra ==' not in r} == REQUIRES
    assert not any('==' in r.split(';')[0] for r in requires)
    assert any(r.startswith('matplotlib') and 'extra == "analysis"' in r
               for r in requires)
    assert ('Requires-Python', '>=3.8') in fields
    # Requires-Python >=3.8: no syntax of a later Python in what is installed.
    for name, data in wheel.items():
        if name.endswith('.py'):
            ast.parse(data, name, feature_version=(3, 8))


def test_import_needs_only_the_install_requirements():
    """`import mmevit` (and building its models) works with mmdet, mmseg,
    matplotlib, safetensors and the ONNX packages unavailable."""
    script = textwrap.dedent('''
        import sys
        BLOCKED = ('mmdet', 'mmseg', 'mmpretrain', 'matplotlib', 'safetensors',
                   'onnx', 'onnxscript', 'onnxruntime', 'pycocotools')
        for name in BLOCKED:  # as if not installed: import fails, find_spec
            sys.modules[name] = None  # gives None (torch 2.1's dynamo asks)
        import mmevit
        from mmevit.registry import MODELS
        MODELS.build(dict(type='EfficientViT', arch='m0'))
        print('ok')
    ''')
    result = subprocess.run([sys.executable, '-c', script], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['ok']
