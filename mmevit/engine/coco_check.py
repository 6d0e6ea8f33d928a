"""mmdet's ``CocoDataset``, warning about the annotations it drops silently.

mmdet skips, without a word, boxes narrower or lower than 1 px (negative
sizes included) or outside their image, and annotations whose
``category_id`` or ``image_id`` the file does not list.
:class:`CheckedCocoDataset` counts them while mmdet parses the file (no
second read of a file that takes seconds and gigabytes to parse) and the
main process logs one warning per file. mmevit's runner loads every
``CocoDataset`` of a config as this class. This module imports mmdet.
"""
import logging

from mmdet.datasets import CocoDataset
from mmengine.dist import is_main_process
from mmengine.logging import print_log

from ..registry import DATASETS

UNLISTED_IMAGE = 'with an image_id not listed in its images'
BAD_BOX = ('with a box of width or height < 1 px (negative too) or outside '
           'its image')
UNLISTED_CATEGORY = 'with a category_id not listed in its categories'


def drop_reason(ann, img, category_ids):
    """Why mmdet's ``CocoDataset.parse_data_info`` skips annotation ``ann``
    of image ``img`` silently, or None when it keeps it or skips it on
    purpose (``ignore``). ``category_ids`` are the file's categories.

    The box test is mmdet's: a box is kept when it overlaps its image, its
    ``area`` is positive and its width and height are at least 1 px.
    """
    if ann.get('ignore', False):
        return None
    if img is None:
        return UNLISTED_IMAGE
    x1, y1, w, h = ann['bbox']
    inter_w = max(0, min(x1 + w, img['width']) - max(x1, 0))
    inter_h = max(0, min(y1 + h, img['height']) - max(y1, 0))
    if (inter_w * inter_h == 0 or ann.get('area', w * h) <= 0 or w < 1
            or h < 1):
        return BAD_BOX
    if ann.get('category_id') not in category_ids:
        return UNLISTED_CATEGORY
    return None


def dropped_annotations_message(path, counts, total):
    """The warning for ``counts`` (by :func:`drop_reason`) of the
    ``total`` annotations of file ``path``."""
    reasons = '; '.join(f'{n} {why}' for why, n in counts.items())
    return (f'{path}: {sum(counts.values())} of its {total} annotations are '
            f'dropped by mmdet\'s CocoDataset when it loads them: {reasons}')


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's :class:`CocoDataset` that counts the annotations mmdet drops
    silently (:func:`drop_reason`) as it parses them, and on the main
    process logs one warning per load with the counts and the file. Takes
    CocoDataset's arguments and loads the same data list."""

    def load_data_list(self):
        self._drop_counts, self._file_categories = {}, None
        data_list = super().load_data_list()
        if self._drop_counts and is_main_process():
            print_log(dropped_annotations_message(
                self.ann_file, self._drop_counts, self._num_annotations),
                logger='current', level=logging.WARNING)
        return data_list

    def _count(self, why):
        self._drop_counts[why] = self._drop_counts.get(why, 0) + 1

    def parse_data_info(self, raw_data_info):
        if self._file_categories is None:  # first image: self.coco is loaded
            self._file_categories = set(self.coco.cats)
            self._num_annotations = len(self.coco.anns)
            for ann in self.coco.anns.values():
                if ann.get('image_id') not in self.coco.imgs and not ann.get(
                        'ignore', False):
                    self._count(UNLISTED_IMAGE)
        img = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            why = drop_reason(ann, img, self._file_categories)
            if why:
                self._count(why)
        return super().parse_data_info(raw_data_info)
