"""What the launch-time annotation check costs beside mmdet's own load of
the annotation file, on a generated file of the size of COCO's
``instances_train2017.json`` (118,287 images, 860,001 annotations with
polygons, about 450 MB).

mmevit's runner loads mmdet's ``CocoDataset`` as ``CheckedCocoDataset``,
which counts the annotations mmdet drops silently while mmdet parses them.
In one process, in turns, this times mmdet's ``load_data_list`` of the file
with the stock class and with the checked one, and the counting pass alone
(the work the check adds, over the same parsed annotations).

Example::

    python tools/analysis_tools/benchmark_annotation_check.py --repeats 2
"""
import argparse
import gc
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO

from mmevit.engine.coco_check import CheckedCocoDataset, count_drops


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text} is not a positive integer')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', type=positive_int, default=118287)
    parser.add_argument('--annotations', type=positive_int, default=860001)
    parser.add_argument('--points', type=positive_int, default=24,
                        help='polygon points per annotation (default 24)')
    parser.add_argument('--repeats', type=positive_int, default=1,
                        help='timings of each kind, in turns (default 1)')
    parser.add_argument('--out', help='keep the generated file here, or '
                        'reuse it if it exists (default: a temporary file, '
                        'removed at the end)')
    return parser.parse_args(argv)


def make_coco_file(path, images, annotations, points, seed=0):
    """Write a COCO-format file of ``images`` 640x480 images and
    ``annotations`` boxes with ``points``-point polygons over mmdet's 80
    COCO classes; one annotation in 1000 has a box mmdet drops."""
    rng = np.random.default_rng(seed)
    classes = CocoDataset.METAINFO['classes']
    categories = [dict(id=i + 1, name=name, supercategory='thing')
                  for i, name in enumerate(classes)]
    image_list = [dict(id=i + 1, file_name=f'{i + 1:012d}.jpg', width=640,
                       height=480) for i in range(images)]
    xy = rng.uniform(0, 400, (annotations, 2)).round(2)
    wh = rng.uniform(2, 200, (annotations, 2)).round(2)
    wh[::1000, 0] = -wh[::1000, 0]  # negative widths: dropped by mmdet
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    image_ids = rng.integers(1, images + 1, annotations)
    category_ids = rng.integers(1, len(classes) + 1, annotations)
    ann_list = []
    for i in range(annotations):
        (x, y), (w, h) = xy[i].tolist(), wh[i].tolist()
        polygon = np.stack([x + abs(w) / 2 * (1 + np.cos(angles)),
                            y + h / 2 * (1 + np.sin(angles))], 1).round(2)
        ann_list.append(dict(
            id=i + 1, image_id=int(image_ids[i]),
            category_id=int(category_ids[i]), bbox=[x, y, w, h],
            area=round(abs(w) * h * 0.8, 2), iscrowd=0,
            segmentation=[polygon.ravel().tolist()]))
    with open(path, 'w') as f:
        json.dump(dict(images=image_list, annotations=ann_list,
                       categories=categories), f)


def load_seconds(dataset_type, path):
    """Seconds of ``dataset_type``'s ``load_data_list`` of ``path``."""
    dataset = dataset_type(ann_file=path, data_root='',
                           data_prefix=dict(img=''), lazy_init=True,
                           pipeline=[])
    start = time.perf_counter()
    dataset.load_data_list()
    seconds = time.perf_counter() - start
    del dataset
    gc.collect()
    return seconds


def counting_seconds(path):
    """Seconds of the check's own work (what CheckedCocoDataset adds) over
    the annotations of ``path``, parsed by mmdet's COCO beforehand."""
    coco = COCO(path)
    per_image = [(coco.imgs[img_id],
                  coco.load_anns(coco.get_ann_ids(img_ids=[img_id])))
                 for img_id in coco.get_img_ids()]  # as mmdet passes them
    start = time.perf_counter()
    categories, counts = set(coco.cats), {}
    count_drops([ann for ann in coco.anns.values()
                 if ann.get('image_id') not in coco.imgs], None, categories,
                counts)
    for img, anns in per_image:
        count_drops(anns, img, categories, counts)
    seconds = time.perf_counter() - start
    del coco, per_image
    gc.collect()
    return seconds


def main(argv=None):
    args = parse_args(argv)
    folder = None if args.out else tempfile.mkdtemp()
    path = args.out or osp.join(folder, 'instances_generated.json')
    if not osp.isfile(path):
        start = time.perf_counter()
        make_coco_file(path, args.images, args.annotations, args.points)
        print(f'generated {args.images} images, {args.annotations} '
              f'annotations in {time.perf_counter() - start:.0f} s')
    print(f'{path}: {osp.getsize(path) / 1e6:.0f} MB', flush=True)
    times = {'mmdet CocoDataset load': [], 'mmevit CheckedCocoDataset load':
             [], 'check alone (counting pass)': []}
    try:
        for _ in range(args.repeats):
            stock = load_seconds(CocoDataset, path)
            checked = load_seconds(CheckedCocoDataset, path)
            counting = counting_seconds(path)
            for name, seconds in zip(times, (stock, checked, counting)):
                times[name].append(seconds)
            print(f'  stock {stock:.2f} s, checked {checked:.2f} s, '
                  f'check alone {counting:.2f} s', flush=True)
    finally:
        if folder:
            os.remove(path)
            os.rmdir(folder)
    medians = {name: statistics.median(values)
               for name, values in times.items()}
    for name, seconds in medians.items():
        print(f'{name}: {seconds:.2f} s (median of {args.repeats})')
    stock = medians['mmdet CocoDataset load']
    print(f'check alone / mmdet load: '
          f'{medians["check alone (counting pass)"] / stock:.1%}; '
          f'(checked - stock) / stock: '
          f'{(medians["mmevit CheckedCocoDataset load"] - stock) / stock:+.1%}')


if __name__ == '__main__':
    sys.exit(main())
