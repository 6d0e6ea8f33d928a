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


def count_drops(anns, img, category_ids, counts):
    """Add to ``counts`` (reason -> number) the annotations ``anns`` of
    image ``img`` (None: not listed in the file) that mmdet's
    ``CocoDataset.parse_data_info`` skips silently; those with ``ignore``
    are skipped on purpose and not counted. ``category_ids`` are the file's
    categories.

    The box test is mmdet's: a box is kept when it overlaps its image, its
    ``area`` is positive and its width and height are at least 1 px.
    """
    if img is None:
        unlisted = sum(1 for ann in anns if not ann.get('ignore', False))
        if unlisted:
            counts[UNLISTED_IMAGE] = counts.get(UNLISTED_IMAGE, 0) + unlisted
        return
    width, height = img['width'], img['height']
    for ann in anns:  # one loop per image: this runs for every annotation
        if ann.get('ignore', False):
            continue
        x1, y1, w, h = ann['bbox']
        # with w, h >= 1, the box overlaps the image iff it starts before
        # the image's end and ends after its start
        if (w < 1 or h < 1 or x1 >= width or y1 >= height or x1 + w <= 0
                or y1 + h <= 0 or ann.get('area', w * h) <= 0):
            why = BAD_BOX
        elif ann.get('category_id') not in category_ids:
            why = UNLISTED_CATEGORY
        else:
            continue
        counts[why] = counts.get(why, 0) + 1


def dropped_annotations_message(path, counts, total):
    """The warning for ``counts`` (by :func:`count_drops`) of the
    ``total`` annotations of file ``path``."""
    reasons = '; '.join(f'{n} {why}' for why, n in counts.items())
    return (f'{path}: {sum(counts.values())} of its {total} annotations are '
            f'dropped by mmdet\'s CocoDataset when it loads them: {reasons}')


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's :class:`CocoDataset` that counts the annotations mmdet drops
    silently (:func:`count_drops`) as it parses them, and on the main
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

    def parse_data_info(self, raw_data_info):
        if self._file_categories is None:  # first image: self.coco is loaded
            self._file_categories = set(self.coco.cats)
            self._num_annotations = len(self.coco.anns)
            count_drops([ann for ann in self.coco.anns.values()
                         if ann.get('image_id') not in self.coco.imgs], None,
                        self._file_categories, self._drop_counts)
        count_drops(raw_data_info['raw_ann_info'],
                    raw_data_info['raw_img_info'], self._file_categories,
                    self._drop_counts)
        return super().parse_data_info(raw_data_info)
