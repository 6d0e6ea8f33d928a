"""Errors that name the dataset file at fault.

mmdet reports a broken COCO dataset deep inside its loaders: a file that is
not JSON as ``Expecting value: line 1 column 1 (char 0)``, a training set
left empty by filtering as ``need at least one array to concatenate``, an
empty image file as an OpenCV assertion. When a run fails, the datasets of
the config are examined and the first problem found becomes the error.

The annotations mmdet drops without a word are counted while mmdet loads
the file (:mod:`mmevit.engine.coco_check`), not here: a second parse of a
large annotation file would cost as much as mmdet's own.
"""
import contextlib
import json
import os.path as osp

from mmengine.registry import DATASETS

from ..errors import DataError, MMEvitError

# Exceptions that mmdet/mmcv raise for broken data (cv2.error is an
# Exception subclass of its own, matched by name).
_DATA_FAILURES = (ValueError, KeyError, TypeError, AssertionError, OSError)

_PHASE_LOADERS = {
    'train': ('train_dataloader', 'val_dataloader'),
    'test': ('test_dataloader', ),
}


@contextlib.contextmanager
def explain_data_errors(cfg, phase):
    """Run a ``phase`` ('train' or 'test') of ``cfg``: re-raise a failure as
    a :class:`DataError` naming the file when the config's datasets show a
    problem; any other failure is left as it is."""
    try:
        yield
    except MMEvitError:
        raise
    except Exception as err:
        if not (isinstance(err, _DATA_FAILURES)
                or type(err).__name__ == 'error'):  # cv2.error
            raise
        if 'failed to load image' in str(err):  # mmcv's LoadImageFromFile
            raise DataError(f'cannot decode the image file: '
                            f'{str(err).split(":", 1)[-1].strip()}') from err
        problem = find_dataset_problem(cfg, phase)
        if problem is None:
            raise
        raise DataError(problem) from err


def _phase_datasets(cfg, phase):
    """``(dataset config, is training set)`` of every leaf dataset of
    ``phase``."""
    for loader_key in _PHASE_LOADERS[phase]:
        loader = cfg.get(loader_key)
        if loader:
            for dataset in _leaf_datasets(loader.get('dataset')):
                yield dataset, loader_key == 'train_dataloader'


def _coco_path(dataset):
    """The path of a dataset config's COCO ``.json`` file, or None."""
    ann_file = dataset.get('ann_file')
    if not ann_file or not str(ann_file).endswith('.json'):
        return None
    return ann_file if osp.isabs(ann_file) else osp.join(
        dataset.get('data_root') or '', ann_file)


def find_dataset_problem(cfg, phase):
    """The first problem found in the datasets of ``phase``, or None."""
    for dataset, training in _phase_datasets(cfg, phase):
        problem = _coco_problem(dataset, training)
        if problem:
            return problem
    return None


def _leaf_datasets(dataset):
    """The dataset configs inside wrappers (ConcatDataset, RepeatDataset)."""
    if not dataset:
        return []
    if dataset.get('datasets'):
        return [d for sub in dataset['datasets'] for d in _leaf_datasets(sub)]
    if dataset.get('dataset'):
        return _leaf_datasets(dataset['dataset'])
    return [dataset]


def _coco_problem(dataset, training):
    path = _coco_path(dataset)
    if path is None:
        return None
    if not osp.isfile(path):
        return f'annotation file not found: {path}'
    try:
        with open(path) as f:
            coco = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        return f'annotation file {path} is not valid JSON ({err})'
    missing = [k for k in ('images', 'annotations', 'categories')
               if not isinstance(coco, dict)
               or not isinstance(coco.get(k), list)]
    if missing:
        return (f'annotation file {path} is not in COCO format: it lacks the '
                f'list(s) {missing}')
    return (_class_problem(dataset, path, coco, training)
            or _image_problem(dataset, coco))


def _dataset_classes(dataset):
    metainfo = dataset.get('metainfo') or {}
    if metainfo.get('classes'):
        return tuple(metainfo['classes'])
    dataset_type = DATASETS.get(dataset.get('type', ''))
    return tuple(getattr(dataset_type, 'METAINFO', {}).get('classes', ()))


def _class_problem(dataset, path, coco, training):
    names = [c.get('name') for c in coco['categories']]
    classes = _dataset_classes(dataset)
    wanted = {c['id'] for c in coco['categories'] if c.get('name') in classes}
    if classes and not wanted:
        return (f'metainfo.classes {_listing(classes)} match none of the '
                f'categories of {path} {_listing(names)}; set '
                'metainfo=dict(classes=(...)) to names from the file')
    filter_cfg = dataset.get('filter_cfg') or {}
    if not training or not filter_cfg.get('filter_empty_gt', False):
        return None
    annotated = {a.get('image_id') for a in coco['annotations']
                 if a.get('category_id') in wanted}
    if not annotated & {img.get('id') for img in coco['images']}:
        return (f'no training image is left after filtering {path}: none of '
                f'its {len(coco["images"])} images has an annotation of the '
                f'classes {_listing(classes)} (images without objects are '
                'skipped in training, filter_cfg.filter_empty_gt)')
    return None


def _image_problem(dataset, coco):
    prefix = (dataset.get('data_prefix') or {}).get('img', '')
    root = osp.join(dataset.get('data_root') or '', prefix)
    for img in coco['images']:
        path = osp.join(root, img.get('file_name', ''))
        if not osp.isfile(path):
            return f'image not found: {path} (listed in the annotations)'
        if osp.getsize(path) == 0:
            return f'image file is empty (0 bytes): {path}'
    return None


def _listing(names, limit=6):
    names = list(names)
    more = f', ... ({len(names)} in all)' if len(names) > limit else ''
    return '(' + ', '.join(map(str, names[:limit])) + more + ')'
