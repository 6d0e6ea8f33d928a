"""What `custom_imports=dict(imports=['mmevit'])` gives a fresh process."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    from mmengine.config import Config
    cfg = Config(dict(custom_imports=dict(imports=['mmevit'])))
    import importlib
    for name in cfg.custom_imports['imports']:
        importlib.import_module(name)
    from {scope}.registry import MODELS, HOOKS
    from {scope}.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    for prefix in ('', 'mmevit.'):  # plain names and the mmevit scope
        backbone = MODELS.build(dict(type=prefix + 'EfficientViT', arch='m1'))
        neck = MODELS.build(dict(type=prefix + 'EfficientViTFPN',
                                 in_channels=[128, 144, 192], out_channels=8,
                                 num_outs=4, num_extra_trans_convs=2))
        print(type(backbone).__module__, type(neck).__module__)
    hook = HOOKS.build(dict(type='SegDataCheckHook'))
    print(type(hook).__name__)
''')


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_custom_imports_register_models_in_both_codebases(scope):
    result = subprocess.run([sys.executable, '-c', SCRIPT.format(scope=scope)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = ['mmevit.models.backbones.efficientvit',
               'mmevit.models.necks.efficientvit_fpn']
    assert result.stdout.split() == modules + modules + ['SegDataCheckHook']
