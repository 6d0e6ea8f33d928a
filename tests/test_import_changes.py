"""What `import mmevit` (a config's `custom_imports`) changes in a fresh
process, against docs/design.md's *What importing mmevit changes* and the
switches it names."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest

from mmevit.import_changes import IMPORT_CHANGES

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Imports the third-party modules mmevit imports, records the process
#: state a user could notice, imports mmevit and prints what changed.
OBSERVE = textwrap.dedent('''
    import json, logging, os, sys, warnings
    import numpy, torch
    import mmcv.cnn
    import mmengine.config, mmengine.dist, mmengine.hooks, mmengine.logging
    import mmengine.model, mmengine.runner
    from mmengine import registry
    from mmengine.config.utils import MODULE2PACKAGE
    from mmengine.runner import CheckpointLoader

    def state():
        root = logging.getLogger()
        return dict(
            registries={name: dict(r.module_dict) for name, r in
                        vars(registry).items()
                        if isinstance(r, registry.Registry)},
            schemes=dict(CheckpointLoader._schemes),
            module2package=dict(MODULE2PACKAGE),
            safe_globals=list(getattr(torch.serialization,
                                      'get_safe_globals', list)()),
            environ=dict(os.environ), sys_path=list(sys.path),
            warnings=list(warnings.filters),
            logging=(root.level, list(root.handlers)),
            torch=(torch.get_num_threads(), torch.get_default_dtype(),
                   torch.is_grad_enabled(),
                   torch.are_deterministic_algorithms_enabled(),
                   torch.get_float32_matmul_precision(),
                   torch.backends.mkldnn.enabled,
                   torch.backends.cudnn.benchmark))

    before = state()
    import mmevit
    after = state()
    changes = []
    for name, names in after['registries'].items():
        changes += [f'{name}.{key}' for key, cls in names.items()
                    if before['registries'][name].get(key) is not cls]
    changes += [f'CheckpointLoader[{key!r}]' for key, fn in
                after['schemes'].items() if before['schemes'].get(key) is not fn]
    changes += [f'MODULE2PACKAGE[{key!r}]' for key, value in
                after['module2package'].items()
                if before['module2package'].get(key) != value]
    changes += [key for key in ('safe_globals', 'environ', 'sys_path',
                                'warnings', 'logging', 'torch')
                if before[key] != after[key]]
    print(json.dumps(sorted(changes)))
''')


def observed_changes(env):
    """The changes, in a process started with only the variables Python
    needs (this one has imported mmevit: what that changed is not passed)
    and ``env``."""
    base = {k: os.environ[k] for k in ('PATH', 'PYTHONPATH', 'HOME')
            if k in os.environ}
    result = subprocess.run([sys.executable, '-c', OBSERVE], cwd=ROOT,
                            env=dict(base, **env), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def readme_changes():
    """``{switch: effects}`` of the bullets of docs/design.md's section."""
    with open(osp.join(ROOT, 'docs', 'design.md')) as f:
        readme = f.read()
    section = readme[readme.index('## What importing mmevit changes'):]
    section = section[:section.index('\n#', 1)]
    listed = {}
    for bullet in re.split(r'\n- ', section)[1:]:
        bullet = bullet.split('\n\n')[0]
        [switch] = re.findall(r'`(MMEVIT_[A-Z_]+)=0`', bullet)
        listed[switch] = set(re.findall(
            r"`((?:MODELS|HOOKS|RUNNERS)\.\w+|MODULE2PACKAGE\['\w+'\]|"
            r"CheckpointLoader\['\w*'\])`", bullet))
    return listed


def test_readme_lists_every_change_with_its_switch_and_effects():
    assert readme_changes() == {change.switch: set(change.effects)
                                for change in IMPORT_CHANGES}


@pytest.mark.parametrize('off', [
    (), *[(change.switch, ) for change in IMPORT_CHANGES],
    tuple(change.switch for change in IMPORT_CHANGES)])
def test_import_changes_only_what_the_readme_lists(off):
    """Each listed change is made where it is needed (the checkpoint loader
    on torch 2.6+ only) unless its switch is 0; nothing else outside mmevit
    changes: no other registry name, no torch setting or serialization
    allowlist, environment variable, path, warning filter or logger."""
    expected = sorted(effect for change in IMPORT_CHANGES
                      if change.switch not in off and change.needed()
                      for effect in change.effects)
    assert observed_changes({switch: '0' for switch in off}) == expected
