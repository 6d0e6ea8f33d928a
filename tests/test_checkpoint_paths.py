"""Every way a checkpoint enters mmevit against every kind of file
(hypothesis draws the pairs): a file that fits loads exactly, anything else
is refused with one line naming the file, and nothing a pickle asks for
runs."""
import copy
import os
import os.path as osp

import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from mmevit.checkpoint import CheckpointError
from mmevit.engine import StrictLoadRunner
from mmevit.models import EfficientViT
from tests.detection_data import RETINA_TOY, toy_cfg
from tests.helpers import Payload, run_tool_in_process

#: Paths that load a whole detector, and those that fill a backbone slot.
MODEL_PATHS = ('load_from', 'resume', 'test', 'demo')
BACKBONE_PATHS = ('init_cfg', 'convert')
KINDS = ('fitting', 'other_arch', 'backbone_only', 'whole_detector',
         'truncated', 'hostile')


def _runner(cfg, work_dir, filename, resume):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir, cfg.load_from, cfg.resume = str(work_dir), filename, resume
    runner = StrictLoadRunner.from_cfg(cfg)
    if resume:  # what Runner.train builds before it loads
        runner._train_loop = runner.build_train_loop(runner._train_loop)
        runner.optim_wrapper = runner.build_optim_wrapper(
            runner.optim_wrapper)
        runner.param_schedulers = runner.build_param_scheduler(
            runner.param_schedulers)
    return runner


def _training_checkpoint(cfg, work_dir, name):
    """A checkpoint as mmengine's Runner saves it (meta, optimizer,
    schedulers, message hub)."""
    runner = _runner(cfg, work_dir, None, resume=True)
    runner.save_checkpoint(str(work_dir), name)
    return str(work_dir / name), runner.model.state_dict()


@pytest.fixture(scope='module')
def files(toy_coco, tmp_path_factory):
    """The toy RetinaNet's config and the checkpoint files every example
    draws from: detector M0 (fits) and M2, backbone M0 and M2."""
    folder = tmp_path_factory.mktemp('checkpoints')
    cfg = toy_cfg(toy_coco)
    m2 = copy.deepcopy(cfg)
    m2.model.backbone.arch = 'm2'
    m2.model.neck.in_channels = EfficientViT.arch_zoo['m2']['embed_dims']
    detector, weights = _training_checkpoint(cfg, folder, 'detector_m0.pth')
    other, _ = _training_checkpoint(m2, folder, 'detector_m2.pth')
    backbones = {}
    for arch in ('m0', 'm2'):
        backbones[arch] = str(folder / f'backbone_{arch}.pth')
        torch.save({'state_dict': EfficientViT(arch=arch).state_dict()},
                   backbones[arch])
    return dict(cfg=cfg, detector=detector, weights=weights,
                detector_m2=other, backbones=backbones,
                image=osp.join(toy_coco['val_img_dir'], '000002.jpg'))


def make_file(files, path, kind, cut, folder):
    """The file of ``kind`` for ``path``; truncated and hostile files are
    made from the one that fits."""
    whole = path in MODEL_PATHS
    fitting = files['detector'] if whole else files['backbones']['m0']
    if kind == 'fitting':
        return fitting
    if kind == 'other_arch':
        return files['detector_m2'] if whole else files['backbones']['m2']
    if kind == 'backbone_only':
        return files['backbones']['m0']
    if kind == 'whole_detector':
        return files['detector']
    target = str(folder / f'{kind}.pth')
    if kind == 'truncated':
        with open(fitting, 'rb') as f:
            data = f.read()
        with open(target, 'wb') as f:
            f.write(data[:int(len(data) * cut)])
    else:
        torch.save({'state_dict': {}, 'meta': Payload(
            os.system, f'touch {folder}/pwned')}, target)
    return target


def fits(path, kind):
    """Whether ``kind`` of file is valid for ``path``: a whole detector for
    the model paths, a backbone (alone or inside a detector) for the
    backbone slots."""
    if path in MODEL_PATHS:
        return kind in ('fitting', 'whole_detector')
    return kind in ('fitting', 'backbone_only', 'whole_detector')


def load(files, path, filename, folder, monkeypatch):
    """Load ``filename`` the way ``path`` does; returns the loaded state
    dict, or the exit status and error line of a tool."""
    if path in ('load_from', 'resume'):
        runner = _runner(files['cfg'], folder / 'work', filename,
                         resume=path == 'resume')
        runner.load_or_resume()
        return runner.model.state_dict()
    if path == 'init_cfg':
        model = EfficientViT(arch='m0', init_cfg=dict(type='Pretrained',
                                                      checkpoint=filename))
        model.init_weights()
        return model.state_dict()
    argv = {
        'test': ('test', RETINA_TOY, filename, '--work-dir', folder / 'work',
                 '--cfg-options', *_data_options(files['cfg'])),
        'demo': ('demo', files['image'], RETINA_TOY, filename, '--out',
                 folder / 'out.png'),
        'convert': ('convert_weights', filename, folder / 'converted.pth',
                    '--arch', 'm0'),
    }[path]
    return run_tool_in_process(monkeypatch, *argv)


def _data_options(cfg):
    """--cfg-options pointing tools/test.py at the data of ``cfg``."""
    loader = cfg.test_dataloader
    return [f'test_dataloader.dataset.data_root={loader.dataset.data_root}',
            f'test_evaluator.ann_file={cfg.test_evaluator.ann_file}',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False']


@settings(max_examples=16, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(MODEL_PATHS + BACKBONE_PATHS),
       kind=st.sampled_from(KINDS), cut=st.floats(0.01, 0.99))
@example(path='resume', kind='other_arch', cut=0.5)  # once trained on
@example(path='resume', kind='fitting', cut=0.5)
def test_every_path_loads_what_fits_and_refuses_the_rest(
        files, tmp_path_factory, monkeypatch, capsys, path, kind, cut):
    event(f'{path} x {kind}')
    folder = tmp_path_factory.mktemp('example')
    filename = make_file(files, path, kind, cut, folder)
    capsys.readouterr()
    try:
        loaded = load(files, path, filename, folder, monkeypatch)
    except CheckpointError as err:
        assert not fits(path, kind), f'{path} refused {kind}: {err}'
        assert filename in str(err) and '\n' not in str(err)
    else:
        err = capsys.readouterr().err
        if isinstance(loaded, int):  # a tool's exit status
            assert loaded == (0 if fits(path, kind) else 2), err[-2000:]
            if loaded:
                assert err.startswith('error:') and filename in err
                assert len(err.splitlines()) == 1, err
        else:
            assert fits(path, kind), f'{path} accepted {kind}'
            expected = files['weights']
            if path == 'init_cfg':
                expected = {k[len('backbone.'):]: v for k, v in
                            expected.items() if k.startswith('backbone.')}
                if kind != 'whole_detector':
                    expected = torch.load(filename)['state_dict']
            assert loaded.keys() == expected.keys()
            for key, value in expected.items():
                assert torch.equal(loaded[key], value), key
    assert not osp.exists(folder / 'pwned')
    if path == 'convert' and fits(path, kind):
        converted = torch.load(folder / 'converted.pth')['state_dict']
        assert {k.split('backbone.')[-1] for k in converted} >= set(
            EfficientViT(arch='m0').state_dict())
