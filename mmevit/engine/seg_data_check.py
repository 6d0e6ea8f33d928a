"""Early, clear errors for semantic segmentation data that does not fit the
model."""
import os.path as osp

from mmengine.hooks import Hook
from torch import nn

from ..errors import DataError
from ..registry import HOOKS
from .wrapped_model import unwrap_model


@HOOKS.register_module()
class SegDataCheckHook(Hook):
    """Stop a segmentation run with an error that names the bad input.

    Without it, mmseg fails late on such data (a missing label map when its
    image is first drawn) or deep inside the loss (``Target 7 is out of
    bounds``), or silently miscounts mIoU (labels or predicted classes
    outside the dataset's classes are dropped from the statistics).

    Before training, validation and testing it checks that every head of the
    model predicts exactly the dataset's classes and that every image has its
    label map; for every batch, that the label maps hold only class indices
    ``0..num_classes-1`` and the head's ``ignore_index`` (255 by default,
    also what ``reduce_zero_label`` makes of label 0).
    """

    def before_train(self, runner):
        self._check_dataset(runner, runner.train_dataloader.dataset)

    def before_val(self, runner):
        self._check_dataset(runner, runner.val_dataloader.dataset)

    def before_test(self, runner):
        self._check_dataset(runner, runner.test_dataloader.dataset)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._check_labels(runner, data_batch)

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        self._check_labels(runner, data_batch)

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        self._check_labels(runner, data_batch)

    @staticmethod
    def _heads(runner):
        """The model's decode head, then its auxiliary head(s) if any."""
        model = unwrap_model(runner.model)
        aux = getattr(model, 'auxiliary_head', None)
        if isinstance(aux, nn.ModuleList):
            return [model.decode_head, *aux]
        return [model.decode_head] + ([aux] if aux is not None else [])

    def _check_dataset(self, runner, dataset):
        classes = dataset.metainfo.get('classes')
        if not classes:
            raise DataError(
                f'{type(dataset).__name__} has no classes; set its '
                'metainfo=dict(classes=(...), palette=[...])')
        names = ', '.join(classes[:5]) + (', ...' if len(classes) > 5 else '')
        for head in self._heads(runner):
            if head.num_classes != len(classes):
                raise DataError(
                    f'{type(head).__name__}.num_classes={head.num_classes} '
                    f'but the dataset has {len(classes)} classes ({names}); '
                    f'set num_classes={len(classes)}')
        for base in _base_datasets(dataset):
            _check_label_maps_exist(base)

    def _check_labels(self, runner, data_batch):
        head = self._heads(runner)[0]
        for sample in data_batch['data_samples']:
            if 'gt_sem_seg' not in sample:
                continue
            values = sample.gt_sem_seg.data.unique()
            bad = values[(values >= head.num_classes)
                         & (values != head.ignore_index)]
            if len(bad):
                reduced = (' (after reduce_zero_label, which subtracts 1)'
                           if sample.metainfo.get('reduce_zero_label') else
                           '')
                raise DataError(
                    f'{sample.metainfo.get("seg_map_path")}: label values '
                    f'{bad.tolist()}{reduced} are outside the '
                    f'{head.num_classes} classes; valid labels are '
                    f'0..{head.num_classes - 1} and {head.ignore_index} '
                    '(ignored)')


def _base_datasets(dataset):
    """The datasets inside dataset wrappers (concat, repeat, ...)."""
    if hasattr(dataset, 'datasets'):
        return [d for sub in dataset.datasets for d in _base_datasets(sub)]
    if hasattr(dataset, 'dataset'):
        return _base_datasets(dataset.dataset)
    return [dataset]


def _check_label_maps_exist(dataset):
    """Raise DataError listing images without a label map, if the
    dataset's pipeline loads label maps."""
    transforms = getattr(dataset.pipeline, 'transforms', [])
    if not any(type(t).__name__ == 'LoadAnnotations' for t in transforms):
        return
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    missing = [info for info in infos
               if not osp.isfile(info.get('seg_map_path') or '')]
    if missing:
        raise DataError(
            f'{len(missing)} of {len(infos)} images have no label map, e.g. '
            f'{missing[0]["img_path"]} (expected '
            f'{missing[0].get("seg_map_path")})')
