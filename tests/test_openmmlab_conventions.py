"""The OpenMMLab conventions mmdet users reach for: mim's model index,
`mim train`/`mim test`, and the Slurm scripts."""
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import yaml

from tests.detection_data import as_cli, toy_options
from tests.helpers import copy_sources

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MIM = osp.join(osp.dirname(sys.executable), 'mim')
RETINA_TOY = 'configs/toy/retinanet_efficientvit_m0_toy.py'


@pytest.fixture(scope='module')
def installed(mmevit_wheel, tmp_path_factory):
    """mmevit installed from its wheel (as `pip install mmevit` does) into a
    folder put first on the path: mim finds a package's model index and
    tools through its install location, which an editable install (the
    test environment's) does not have."""
    target = tmp_path_factory.mktemp('site')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet',
                    '--no-deps', '--no-index', '--target', str(target),
                    str(mmevit_wheel)], check=True, timeout=300)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(target), os.environ.get('PYTHONPATH', '')]))


def mim(env, *args, timeout=600):
    result = subprocess.run([MIM, *map(str, args)], cwd=ROOT, text=True,
                            capture_output=True, timeout=timeout, env=env,
                            input='n\n')
    output = result.stdout + result.stderr  # the tools log to stderr
    assert result.returncode == 0, output[-3000:]
    return output


def all_configs():
    """Every config, as a path relative to the repository root."""
    paths = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, ROOT) for p in paths)


def config_names():
    return {osp.splitext(osp.basename(p))[0] for p in all_configs()}


def test_metafile_indexes_every_config_with_the_papers_results():
    with open(osp.join(ROOT, 'configs', 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    assert {m['Name'] for m in models} == config_names()
    by_name = {m['Name']: m for m in models}
    for model in models:
        assert osp.isfile(osp.join(ROOT, model['Config']))
        assert model['Metadata']['Parameters'] > 0
        assert model['Metadata']['FLOPs'] > 0
    # DESIGN: the paper's COCO val2017 results for M4
    retina = by_name['retinanet_efficientvit_m4_coco']['Results'][0]
    assert retina['Metrics']['box AP'] == 32.7
    mask = {r['Task']: r['Metrics']
            for r in by_name['mask_rcnn_efficientvit_m4_coco']['Results']}
    assert mask['Object Detection']['box AP'] == 32.8
    assert mask['Instance Segmentation']['mask AP'] == 31.0
    assert by_name['retinanet_efficientvit_m5_coco']['Metadata'][
        'Pretrained Backbone'].endswith('efficientvit_m5.pth')
    # the published numbers say so, and come with the official checkpoints
    for name, weights in (('retinanet_efficientvit_m4_coco',
                           'retinanet_efficientvit_m4_fpn_1x_coco.pth'),
                          ('mask_rcnn_efficientvit_m4_coco',
                           'mask_rcnn_efficientvit_m4_fpn_1x_coco.pth')):
        assert by_name[name]['Weights'].endswith('/v1.0/' + weights)
        assert by_name[name]['Metadata']['Results Source'].startswith('published')
    # mmdet's 3x schedule: 12 epochs over the data set repeated 3 times
    assert by_name['retinanet_efficientvit_m4_ms-3x_coco']['Metadata']['Epochs'] == 36
    assert by_name['retinanet_efficientvit_m4_coco']['Metadata']['Epochs'] == 12
    # real-time configs are counted at their 640x640 test size
    assert by_name['rtmdet_efficientvit_m0_coco']['Metadata']['FLOPs Input'] == '1x3x640x640'


def test_mim_search_lists_every_config(installed):
    out = mim(installed, 'search', 'mmevit')
    assert config_names() <= {word.strip('|') for word in out.split()}


def test_mim_finds_an_editable_install_run_from_the_repository(tmp_path):
    """This environment's editable install (pip's PEP 660 one keeps only
    metadata in site-packages): with the metadata written into a fresh copy
    and the copy first on the path, as docs/get_started.md says, mim finds
    the model index and tools there."""
    clone = copy_sources(tmp_path / 'mmevit')
    subprocess.run([sys.executable, 'setup.py', '--quiet', 'egg_info'],
                   cwd=clone, check=True, timeout=120, capture_output=True)
    out = mim(dict(os.environ, PYTHONPATH=str(clone)), 'search', 'mmevit')
    assert config_names() <= {word.strip('|') for word in out.split()}


def test_mim_train_and_test_run_the_tools(installed, toy_coco, tmp_path):
    options = as_cli(toy_options(toy_coco, **{
        'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 10}))
    mim(installed, 'train', 'mmevit', RETINA_TOY, '--work-dir', tmp_path, *options)
    checkpoint = tmp_path / 'epoch_1.pth'
    assert checkpoint.is_file()
    out = mim(installed, 'test', 'mmevit', RETINA_TOY, '--checkpoint', checkpoint,
              '--work-dir', tmp_path, *options)
    # the installed tool loaded the checkpoint strictly and ran the test loop
    # (a 4-iteration model scores nothing over the threshold: no mAP line)
    assert f'Loaded checkpoint {checkpoint} (strict)' in out
    assert 'Epoch(test) [2/2]' in out


@pytest.mark.parametrize('script,args,tool', [
    ('slurm_train.sh', ['CONFIG.py', 'work_dirs/x', '--resume'],
     ['train.py', 'CONFIG.py', '--work-dir=work_dirs/x', '--launcher=slurm',
      '--resume']),
    ('slurm_test.sh', ['CONFIG.py', 'ckpt.pth', '--out', 'r.pkl'],
     ['test.py', 'CONFIG.py', 'ckpt.pth', '--launcher=slurm', '--out',
      'r.pkl']),
])
def test_slurm_scripts_start_one_task_per_gpu(tmp_path, script, args, tool):
    """A stand-in ``srun`` records the command line it is given."""
    srun = tmp_path / 'srun'
    srun.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_LOG"\n')
    srun.chmod(0o755)
    log = tmp_path / 'srun.log'
    env = dict(os.environ, PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}',
               SRUN_LOG=str(log), GPUS='16', SRUN_ARGS='--qos=high')
    subprocess.run(['bash', f'tools/{script}', 'gpu', 'job', *args],
                   cwd=ROOT, env=env, check=True, timeout=60)
    called = log.read_text().splitlines()
    assert called[:10] == ['-p', 'gpu', '--job-name=job', '--gres=gpu:8',
                           '--ntasks=16', '--ntasks-per-node=8',
                           '--cpus-per-task=5', '--kill-on-bad-exit=1',
                           '--qos=high', 'python']
    assert called[10] == '-u'
    assert osp.basename(called[11]) == tool[0]
    assert called[12:] == tool[1:]


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_scripts_name_their_arguments(script):
    result = subprocess.run(['bash', f'tools/{script}', 'gpu'], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f'usage: bash tools/{script} PARTITION')



@pytest.mark.parametrize('path', all_configs())
def test_auto_scale_lr_base_batch_is_the_recipes_total_batch(path):
    """`--auto-scale-lr` multiplies the lr by (GPUs x batch per GPU) /
    base_batch_size: at the recipe's own batch it must change nothing. The
    recipes of mmevit's configs run on 8 GPUs (the paper's), a swap
    example on the GPUs its stock base names (`4xb4`), the toy configs in
    one process."""
    from mmengine.config import Config

    import mmevit  # noqa: F401  (mmdet:: and mmevit:: paths)
    cfg = Config.fromfile(osp.join(ROOT, path))
    with open(osp.join(ROOT, path)) as f:
        named = re.search(r"_base_ = .*?(\d+)xb\d+", f.read())
    gpus = {'configs/toy/': 1, 'configs/swap/': int(named.group(1)) if named else 8}.get(
        osp.dirname(path) + '/', 8)
    assert cfg.auto_scale_lr.base_batch_size == gpus * cfg.train_dataloader.batch_size
