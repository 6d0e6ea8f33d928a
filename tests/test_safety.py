"""Safe under crashes and bad input: strict whole-model checkpoints,
crash-safe saving and resume, data errors that name the file."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import Runner
from safetensors.torch import save_file

from mmevit.checkpoint import CheckpointError, load_checkpoint_file
from mmevit.engine import StrictLoadRunner, build_runner, load_model_checkpoint
from mmevit.engine.coco_check import count_drops
from mmevit.engine.runner import with_checked_coco
from mmevit.errors import ConfigError, DataError
from mmevit.models import EfficientViT
from mmevit.tools import (
    check_model_channels,
    explain_data_errors,
    merge_cfg_options,
    replace_sync_bn,
)
from mmevit.tools.data_errors import find_dataset_problem
from tests.detection_data import RETINA_TOY, toy_cfg, toy_options
from tests.detection_data import as_cli as options_cli
from tests.helpers import ROOT, run_tool, run_tool_in_process

register_all_modules(init_default_scope=True)


def as_cli(cfg_path, work_dir, *extra):
    return [sys.executable, 'tools/train.py', str(cfg_path), '--work-dir',
            str(work_dir), *extra]


@pytest.fixture(scope='module')
def m2_detector_checkpoint(tmp_path_factory):
    """Weights of the toy RetinaNet built with an M2 backbone."""
    cfg = Config.fromfile(RETINA_TOY)
    cfg.model.backbone.arch = 'm2'
    cfg.model.neck.in_channels = EfficientViT.arch_zoo['m2']['embed_dims']
    replace_sync_bn(cfg.model)
    path = tmp_path_factory.mktemp('ckpt') / 'retinanet_m2.pth'
    torch.save({'meta': {}, 'state_dict': MODELS.build(cfg.model).state_dict()},
               path)
    return str(path)


def toy_model():
    cfg = Config.fromfile(RETINA_TOY)
    replace_sync_bn(cfg.model)
    return MODELS.build(cfg.model)


def test_checkpoint_of_another_arch_is_refused(m2_detector_checkpoint):
    with pytest.raises(CheckpointError) as info:
        load_model_checkpoint(toy_model(), m2_detector_checkpoint)
    message = str(info.value)
    assert m2_detector_checkpoint in message and '\n' not in message
    assert 'shape mismatches' in message
    assert 'backbone looks like EfficientViT m2, the config asks for m0' \
        in message


def test_backbone_only_file_is_refused_with_a_hint(tmp_path):
    path = tmp_path / 'efficientvit_m0.safetensors'
    weights = EfficientViT(arch='m0').state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path))
    with pytest.raises(CheckpointError, match='backbone-only weights .*'
                       'model.backbone.init_cfg.checkpoint'):
        load_model_checkpoint(toy_model(), str(path))


def test_whole_model_checkpoint_round_trips(tmp_path):
    model = toy_model()
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    fresh = toy_model()
    load_model_checkpoint(fresh, str(path))
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_detector_with_a_fused_backbone_loads_an_unfused_checkpoint(tmp_path):
    """A detector built with ``backbone.deploy=True`` takes the whole-model
    checkpoint of its unfused twin (the backbone folds BN on load) and
    computes the same features; it still refuses one that misses a key."""
    model = toy_model().eval()
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    cfg = Config.fromfile(RETINA_TOY)
    replace_sync_bn(cfg.model)
    cfg.model.backbone.deploy = True
    fused = MODELS.build(cfg.model).eval()
    load_model_checkpoint(fused, str(path))
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(fused.extract_feat(x), model.extract_feat(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    state = model.state_dict()
    del state['backbone.stages.0.blocks.0.dw0.m.conv.weight']
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointError, match=r'1 missing keys: '
                       r'backbone\.stages\.0\.blocks\.0\.dw0\.m\.conv\.weight'):
        load_model_checkpoint(MODELS.build(cfg.model), str(path))


def test_load_from_is_strict(toy_coco, m2_detector_checkpoint, tmp_path):
    cfg = toy_cfg(toy_coco)
    cfg.work_dir, cfg.load_from = str(tmp_path), m2_detector_checkpoint
    runner = StrictLoadRunner.from_cfg(cfg)
    with pytest.raises(CheckpointError, match='looks like EfficientViT m2'):
        runner.load_or_resume()


@pytest.mark.parametrize('runner_type,strict', [
    (None, True), ('StrictLoadRunner', True), ('Runner', False)])
def test_tools_build_the_configs_runner_type(toy_coco, tmp_path, runner_type,
                                             strict):
    """As mmdet's tools: the config's runner_type when set (a plain Runner
    loads leniently, the user's choice), else the strict runner."""
    cfg = toy_cfg(toy_coco)
    cfg.work_dir = str(tmp_path)
    if runner_type:
        cfg.runner_type = runner_type
    runner = build_runner(cfg)
    assert isinstance(runner, StrictLoadRunner) == strict
    assert isinstance(runner, Runner)


def test_tools_refuse_a_checkpoint_of_another_arch(
        toy_coco, m2_detector_checkpoint, tmp_path, monkeypatch, capsys):
    image = osp.join(toy_coco['val_img_dir'], '000002.jpg')
    commands = {
        'test': [RETINA_TOY, m2_detector_checkpoint,
                 '--work-dir', str(tmp_path), '--cfg-options',
                 f'test_dataloader.dataset.data_root={toy_coco["data_root"]}/',
                 f'test_evaluator.ann_file={toy_coco["val_ann_file"]}',
                 'test_dataloader.num_workers=0',
                 'test_dataloader.persistent_workers=False'],
        'demo': [image, RETINA_TOY, m2_detector_checkpoint,
                 '--out', str(tmp_path / 'out.png')],
    }
    for name, argv in commands.items():
        status = run_tool_in_process(monkeypatch, name, *argv)
        err = capsys.readouterr().err
        assert status == 2, (name, err[-2000:])
        assert err.startswith('error:') and len(err.splitlines()) == 1, name
        assert 'looks like EfficientViT m2' in err, name
    assert not (tmp_path / 'out.png').exists()


def test_run_killed_while_saving_resumes_from_last_complete_checkpoint(
        toy_coco, tmp_path):
    """SIGKILL while the second checkpoint is written, max_keep_ckpts=1:
    the first checkpoint, and last_checkpoint naming it, survive, and
    --resume finishes the run from there with the saved optimizer state."""
    work_dir = tmp_path / 'work'
    config = tmp_path / 'killed_toy.py'
    root = toy_coco['data_root'] + '/'
    config.write_text(f'''
_base_ = {RETINA_TOY!r}
custom_imports = dict(imports=['mmevit', 'tests.kill_during_save_hook'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='KillDuringSaveHook', save_index=2)]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
train_cfg = dict(max_epochs=2, val_interval=10)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={root!r}, indices=4))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={root!r}))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={toy_coco['val_ann_file']!r})
test_evaluator = val_evaluator
''')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT, os.environ.get('PYTHONPATH', '')]))
    killed = subprocess.run(as_cli(config, work_dir), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    last = (work_dir / 'last_checkpoint').read_text()
    assert osp.basename(last) == 'epoch_1.pth'
    first = load_checkpoint_file(last)  # complete and loadable
    assert first['meta']['epoch'] == 1

    cfg = Config.fromfile(str(config))
    cfg.work_dir, cfg.resume = str(work_dir), True
    runner = StrictLoadRunner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.load_or_resume()  # auto-resume: reads last_checkpoint
    assert (runner.epoch, runner.iter) == (1, 2)
    resumed = runner.optim_wrapper.optimizer.state_dict()['state']
    assert first['optimizer']['state']
    for index, state in first['optimizer']['state'].items():
        torch.testing.assert_close(resumed[index]['exp_avg'],
                                   state['exp_avg'])

    config.write_text(config.read_text().replace(
        "custom_hooks = [dict(type='KillDuringSaveHook', save_index=2)]",
        'custom_hooks = []'))
    resumed = subprocess.run(as_cli(config, work_dir, '--resume'), cwd=ROOT,
                             env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 1' in resumed.stdout + resumed.stderr
    final = load_checkpoint_file(work_dir / 'epoch_2.pth')
    assert final['meta']['iter'] == 2 * 2  # 4 images / batch 2, 2 epochs
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['epoch_2.pth']
    assert osp.basename((work_dir / 'last_checkpoint').read_text()) == \
        'epoch_2.pth'


def train_argv(data, work_dir, *extra, **options):
    """``tools/train.py`` arguments: one epoch of the toy RetinaNet on two
    images of ``data``, no validation."""
    options = toy_options(data, **{'train_cfg.max_epochs': 1,
                                   'train_cfg.val_interval': 10,
                                   'train_dataloader.dataset.indices': 2,
                                   **options})
    return [RETINA_TOY, '--work-dir', work_dir, *extra, *options_cli(options)]


@pytest.fixture(scope='module')
def m2_training_checkpoint(toy_coco, tmp_path_factory):
    """A real tools/train.py checkpoint (optimizer, schedulers, message hub)
    of the toy RetinaNet with an M2 backbone."""
    work_dir = tmp_path_factory.mktemp('m2_run')
    run_tool('tools/train.py', *train_argv(
        toy_coco, work_dir, **{'model.backbone.arch': 'm2',
                               'model.neck.in_channels': '[128,192,224]'}))
    return str(work_dir / 'epoch_1.pth')


@pytest.mark.parametrize('optimizer_state', [True, False])
def test_resume_from_another_arch_is_refused_before_training(
        toy_coco, m2_training_checkpoint, tmp_path, monkeypatch, capsys,
        optimizer_state):
    """--resume with an M2 checkpoint into the M0 config: one error line
    naming the arch, nothing trained or written (once: without optimizer
    state it trained on with most weights random, with it a traceback)."""
    checkpoint = m2_training_checkpoint
    if not optimizer_state:
        state = load_checkpoint_file(checkpoint)
        del state['optimizer']
        checkpoint = str(tmp_path / 'no_optimizer.pth')
        torch.save(state, checkpoint)
    work_dir = tmp_path / 'work'
    status = run_tool_in_process(
        monkeypatch, 'train', *train_argv(toy_coco, work_dir, '--resume',
                                          checkpoint,
                                          **{'train_cfg.max_epochs': 2}))
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    assert err.startswith(f'error: {checkpoint} does not fit')
    assert len(err.splitlines()) == 1
    assert 'backbone looks like EfficientViT m2, the config asks for m0' in err
    assert not list(work_dir.glob('*.pth'))


def test_second_run_on_a_work_dir_is_refused_until_the_first_ends(
        toy_coco, tmp_path, monkeypatch, capsys):
    """A run holding the work dir makes tools/train.py refuse it in one
    line; once the holder is SIGKILLed the next run trains, and removes the
    partial checkpoint a killed save left (SafeCheckpointHook in use)."""
    work_dir = tmp_path / 'work'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\n'
         'from mmevit.tools import exclusive_work_dir\n'
         'with exclusive_work_dir(sys.argv[1]):\n'
         '    print("locked", flush=True); time.sleep(600)', str(work_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'locked\n'
        status = run_tool_in_process(monkeypatch, 'train',
                                     *train_argv(toy_coco, work_dir))
        err = capsys.readouterr().err
        assert status == 2, err[-2000:]
        assert err == (f'error: work dir {work_dir} is in use by another '
                       f'training run (process {holder.pid} holds '
                       f'{work_dir}/.train.lock); wait for it to end or pass '
                       'another --work-dir\n')
        assert not list(work_dir.glob('*.pth'))
    finally:
        holder.kill()
        holder.wait()
    stale = work_dir / '.epoch_1.pth.tmp'
    stale.write_bytes(b'partial')  # as a run killed while saving leaves it
    status = run_tool_in_process(monkeypatch, 'train',
                                 *train_argv(toy_coco, work_dir))
    assert status == 0, capsys.readouterr().err[-2000:]
    assert not stale.exists()
    assert load_checkpoint_file(work_dir / 'epoch_1.pth')['meta']['epoch'] == 1
    assert (work_dir / 'last_checkpoint').read_text() == str(
        work_dir / 'epoch_1.pth')


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs (the toy checkpoint with its AdamW state is about
    43 MiB: one fits, a second does not). Needs root."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64m',
                              'tmpfs', str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip('a tmpfs cannot be mounted here (needs root): '
                    f'{mounted.stderr.decode().strip()}')
    yield disk
    subprocess.run(['umount', '--lazy', str(disk)], check=True)  # the run's log may be open


def test_disk_full_during_a_save_keeps_the_last_checkpoint(
        toy_coco, small_disk, monkeypatch, capsys):
    """The second checkpoint does not fit on the disk: one error line naming
    the file and the space it needs, the partial file removed, epoch 1
    still complete and named by last_checkpoint."""
    work_dir = small_disk / 'work'
    status = run_tool_in_process(monkeypatch, 'train', *train_argv(
        toy_coco, work_dir, **{'train_cfg.max_epochs': 2}))
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    first = work_dir / 'epoch_1.pth'
    assert first.is_file(), err[-2000:]
    size = f'{first.stat().st_size / 2**20:.1f} MiB'
    assert err.startswith(f'error: no room to save checkpoint '
                          f'{work_dir}/epoch_2.pth (No space left on device): '
                          f'it needs about {size} (the size of {first}), ')
    assert err.endswith(f' are free there; the partial file was removed; the '
                        f'last complete checkpoint {first} is kept\n')
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in work_dir.iterdir() if '.pth' in p.name) \
        == ['epoch_1.pth']  # the partial .epoch_2.pth.tmp is gone
    assert (work_dir / 'last_checkpoint').read_text() == str(first)
    assert load_checkpoint_file(first)['meta']['epoch'] == 1


@pytest.fixture
def broken_coco(toy_coco, tmp_path):
    """A writable copy of the toy COCO set."""
    root = tmp_path / 'data'
    shutil.copytree(toy_coco['data_root'], root)
    data = dict(toy_coco, data_root=str(root))
    data['val_ann_file'] = str(root / 'annotations/instances_val.json')
    data['train_ann'] = root / 'annotations/instances_train.json'
    return data


def without_annotations(text):
    coco = json.loads(text)
    coco['annotations'] = []
    return json.dumps(coco)


def train_problem(data, **options):
    return find_dataset_problem(toy_cfg(data, **options), 'train')


def test_annotation_file_not_json_is_named(broken_coco):
    broken_coco['train_ann'].write_text('<html>not json</html>')
    problem = train_problem(broken_coco)
    assert problem.startswith(f'annotation file {broken_coco["train_ann"]} '
                              'is not valid JSON')


def test_missing_annotation_file_is_named(broken_coco):
    broken_coco['train_ann'].unlink()
    assert train_problem(broken_coco) == (
        f'annotation file not found: {broken_coco["train_ann"]}')


def test_training_set_without_annotations_says_why(broken_coco):
    ann = broken_coco['train_ann']
    ann.write_text(without_annotations(ann.read_text()))
    problem = train_problem(broken_coco)
    assert 'no training image is left after filtering' in problem
    assert 'none of its 8 images has an annotation' in problem


def test_classes_matching_no_category_list_both(broken_coco):
    problem = train_problem(broken_coco, **{
        'train_dataloader.dataset.metainfo': dict(classes=('cat', 'dog'))})
    assert "metainfo.classes (cat, dog) match none of the categories" in problem
    assert '(circle' in problem or 'circle' in problem


def test_empty_image_is_named(broken_coco):
    image = osp.join(broken_coco['data_root'], 'train', '000001.jpg')
    open(image, 'wb').close()
    assert train_problem(broken_coco) == f'image file is empty (0 bytes): {image}'


@pytest.mark.parametrize('rewrite, message', [
    (lambda text: '', 'instances_train.json is not valid JSON'),
    (without_annotations, 'no training image is left after filtering'),
])
def test_training_run_reports_the_broken_file(broken_coco, tmp_path, rewrite,
                                              message):
    """The real mmdet failures (a JSON decode error deep in pycocotools, an
    empty concatenation after filtering) become one DataError naming the
    file."""
    ann = broken_coco['train_ann']
    ann.write_text(rewrite(ann.read_text()))
    cfg = toy_cfg(broken_coco)
    cfg.work_dir = str(tmp_path / 'work')
    runner = StrictLoadRunner.from_cfg(cfg)
    with pytest.raises(DataError, match=message):
        with explain_data_errors(cfg, 'train'):
            runner.train()


def test_init_cfg_checkpoint_option_on_a_from_scratch_config():
    cfg = Config.fromfile(RETINA_TOY)
    assert cfg.model.backbone.init_cfg is None
    merge_cfg_options(cfg, {'model.backbone.init_cfg.checkpoint': 'w.pth'})
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint='w.pth')
    with pytest.raises(ConfigError, match='model.backbone.arch is '):
        merge_cfg_options(cfg, {'model.backbone.arch.name': 'm4'})


def test_drop_path_rate_must_be_a_probability():
    with pytest.raises(ConfigError, match=r'drop_path_rate=2.0 .*\[0, 1\)'):
        EfficientViT(arch='m0', drop_path_rate=2.0)


def test_demo_counts_only_detections_above_the_threshold(toy_coco, tmp_path,
                                                        monkeypatch, capsys):
    """With an untrained model and a threshold above every score, nothing
    is counted (the count once was the number of all predictions)."""
    path = tmp_path / 'toy.pth'
    torch.save({'state_dict': toy_model().state_dict()}, path)
    image = osp.join(toy_coco['val_img_dir'], '000002.jpg')
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    statuses = []
    for img in (image, empty):
        statuses.append(run_tool_in_process(
            monkeypatch, 'demo', img, RETINA_TOY, path, '--out',
            tmp_path / 'out.png', '--score-thr', '1.01'))
        statuses.append(capsys.readouterr())
    ok, ok_output, empty_status, empty_output = statuses
    assert ok == 0, ok_output.err[-2000:]
    assert '0 detections above 1.01' in ok_output.out
    assert empty_status == 2
    assert empty_output.err == f'error: image file is empty (0 bytes): {empty}\n'


@pytest.mark.parametrize('options, message', [
    ({'model.backbone.arch': 'm2'},
     r'model.neck.in_channels=\[64, 128, 192\] does not fit the backbone, '
     r'which gives channels \[128, 192, 224\]'),
    ({'model.bbox_head.in_channels': 128},
     r'model.bbox_head.in_channels=128 does not fit the neck, which gives '
     r'96 channels; set model.bbox_head.in_channels=96'),
])
def test_channels_that_do_not_fit_fail_at_build_time(options, message):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/rtmdet_efficientvit_m0_coco.py'))
    cfg.merge_from_dict(options)
    replace_sync_bn(cfg.model)
    model = MODELS.build(cfg.model)
    with pytest.raises(ConfigError, match=message):
        check_model_channels(model)


def test_configs_of_every_arch_pass_the_channel_check():
    for config in ('rtmdet_efficientvit_m5_coco.py',
                   'mask_rcnn_efficientvit_m3_coco.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
        replace_sync_bn(cfg.model)
        check_model_channels(MODELS.build(cfg.model))


def test_annotations_mmdet_drops_are_counted_in_one_warning(
        broken_coco, tmp_path, monkeypatch):
    """Boxes of negative width or zero height and unknown category_ids:
    one warning per loaded file, in the run's log, with counts equal to
    what mmdet's CocoDataset really drops (train and test loaders alike),
    counted while mmdet loads the file: it is opened once."""
    ann_file = broken_coco['val_ann_file']
    with open(ann_file) as f:
        coco = json.load(f)
    anns = coco['annotations']
    anns[0]['bbox'][2] = -anns[0]['bbox'][2]  # negative width
    anns[1]['bbox'][3] = 0.                    # zero height
    anns[2]['category_id'] = 99                # not in the categories
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    cfg = toy_cfg(broken_coco)
    kept = sum(len(item['instances']) for item in
               DATASETS.build(cfg.test_dataloader.dataset).load_data_list())
    assert kept == len(anns) - 3
    expected = (f'{ann_file}: 3 of its {len(anns)} annotations are dropped by '
                "mmdet's CocoDataset when it loads them: 2 with a box of "
                'width or height < 1 px (negative too) or outside its image; '
                '1 with a category_id not listed in its categories')
    opened = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    for loader in ('val_dataloader', 'test_dataloader'):
        cfg.work_dir = str(tmp_path / loader)
        runner = StrictLoadRunner.from_cfg(cfg)
        opened.clear()
        monkeypatch.setattr('builtins.open', counting_open)
        runner.build_dataloader(cfg[loader])
        monkeypatch.undo()
        assert opened.count(ann_file) == 1, opened
        [log] = glob.glob(osp.join(cfg.work_dir, runner.timestamp, '*.log'))
        warnings = [line for line in open(log) if 'dropped by mmdet' in line]
        assert len(warnings) == 1 and 'WARNING' in warnings[0], warnings
        assert warnings[0].rstrip().endswith(expected)


def test_dataset_wrappers_load_checked_coco_datasets():
    """The runner loads every CocoDataset of a config, inside wrappers too,
    as mmevit.CheckedCocoDataset; other types stay."""
    dataset = dict(type='ConcatDataset', datasets=[
        dict(type='RepeatDataset', times=2,
             dataset=dict(type='CocoDataset', ann_file='a.json')),
        dict(type='mmdet.CocoDataset', ann_file='b.json'),
        dict(type='LVISV1Dataset', ann_file='c.json')])
    checked = with_checked_coco(dataset)
    assert [checked['datasets'][0]['dataset']['type'],
            checked['datasets'][1]['type'], checked['datasets'][2]['type']] \
        == ['mmevit.CheckedCocoDataset'] * 2 + ['LVISV1Dataset']
    assert dataset['datasets'][1]['type'] == 'mmdet.CocoDataset'


def near(values):
    """Floats, mostly from ``values`` (on and next to the edges of the
    test's images)."""
    return st.one_of(st.sampled_from(values), st.floats(
        -20, 20, allow_nan=False).map(lambda v: round(v, 1)))


edge = near([-5., -1., -0.5, 0., 4., 5., 9., 10., 11.])
length = near([-1., 0., 0.5, 1., 2., 5.])


@settings(max_examples=1000, deadline=None)
@given(anns=st.lists(st.fixed_dictionaries(
    {'bbox': st.tuples(edge, edge, length, length).map(list),
     'area': st.sampled_from([-1., 0., 5., 100.]),
     'category_id': st.sampled_from([1, 2, 3, 99]),
     'iscrowd': st.sampled_from([0, 1])},
    optional={'ignore': st.booleans()}), max_size=12),
    size=st.sampled_from([(5, 10), (10, 5)]))
def test_drop_counts_equal_what_mmdet_drops(anns, size):
    """For any boxes (outside the image, negative, tiny), areas, category
    ids and ignore flags, the counted annotations are exactly those mmdet's
    CocoDataset.parse_data_info leaves out, ``ignore`` ones aside."""
    dataset = DATASETS.build(dict(type='CocoDataset', ann_file='x.json',
                                  data_prefix=dict(img=''), lazy_init=True,
                                  pipeline=[]))
    dataset.cat_ids, dataset.cat2label = [1, 2, 3], {1: 0, 2: 1, 3: 2}
    img = dict(id=1, file_name='a.jpg', width=size[0], height=size[1],
               img_id=1)
    anns = [dict(ann, id=i, image_id=1) for i, ann in enumerate(anns)]
    kept = dataset.parse_data_info(dict(raw_ann_info=anns,
                                        raw_img_info=img))['instances']
    counts = {}
    count_drops(anns, img, {1, 2, 3}, counts)
    ignored = sum(1 for ann in anns if ann.get('ignore', False))
    assert sum(counts.values()) == len(anns) - ignored - len(kept)
