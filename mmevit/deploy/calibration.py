"""Calibration batches for ``tools/deploy.py --quantize``: images of the
config's test dataset, or of a folder, through the config's test pipeline
and its model's data preprocessor, as the test loop feeds the model."""
import copy
import os
import os.path as osp

from mmengine.dataset import Compose, pseudo_collate

from ..engine import task_registry
from ..errors import ConfigError, DataError

IMAGE_SUFFIXES = ('.bmp', '.jpeg', '.jpg', '.png', '.tif', '.tiff', '.webp')


def folder_images(folder, count):
    """The first ``count`` image files of ``folder`` (sorted by name).

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        DataError: It holds no image file.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'calibration folder not found: {folder}')
    names = sorted(name for name in os.listdir(folder)
                   if name.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise DataError(f'calibration folder {folder} holds no image '
                        f'({", ".join(IMAGE_SUFFIXES)})')
    return [osp.join(folder, name) for name in names[:count]]


def dataset_batches(cfg, task, count):
    """``(inputs, data_samples)`` of each of the first ``count`` images of
    ``cfg``'s test dataset, one image per batch."""
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg['indices'] = count
    dataset = task_registry(task, 'DATASETS').build(dataset_cfg)
    preprocessor = task_registry(task, 'MODELS').build(cfg.model.data_preprocessor)
    for index in range(len(dataset)):
        yield _preprocess(preprocessor, dataset[index])


def folder_batches(cfg, task, files):
    """``(inputs, data_samples)`` of each image file, one per batch.

    Raises:
        DataError: A file is not an image that decodes.
    """
    import mmcv
    preprocessor = task_registry(task, 'MODELS').build(cfg.model.data_preprocessor)
    pipeline = Compose(_array_pipeline(cfg, task))
    for index, path in enumerate(files):
        try:
            image = mmcv.imread(path)
        except Exception as err:  # cv2 raises its own error type on junk
            raise DataError(f'cannot decode the calibration image {path} '
                            f'({err})') from None
        if image is None or image.size == 0:
            raise DataError(f'cannot decode the calibration image {path}')
        yield _preprocess(preprocessor, pipeline(dict(img=image,
                                                      img_id=index)))


def _array_pipeline(cfg, task):
    """The test pipeline on a decoded image: its loader takes an array and
    its annotation loader is dropped."""
    steps = []
    for step in cfg.test_dataloader.dataset.pipeline:
        name = step['type'].rpartition('.')[2]
        if name == 'LoadAnnotations':
            continue
        if name == 'LoadImageFromFile':
            step = dict(step, type=f'{task}.LoadImageFromNDArray')
        steps.append(step)
    if not steps:
        raise ConfigError('test_dataloader.dataset.pipeline is empty')
    return steps


def _preprocess(preprocessor, sample):
    batch = preprocessor(pseudo_collate([sample]), False)
    return batch['inputs'], batch['data_samples']


def batch_feeds(session, task, batches):
    """The feeds of ``session`` (an ``OnnxSession``) for each batch:
    a detector's with each image's size and resize factor."""
    for inputs, samples in batches:
        yield session.feeds(inputs) if task == 'mmseg' else session.feeds(
            inputs, [s.img_shape[:2] for s in samples], [s.scale_factor for s in samples])
