"""Deterministic synthetic data sets in the real COCO and ADE20K layouts.

Pictures of circles, squares and triangles on a textured background, written
exactly like the real data sets: mmdet's ``CocoDataset`` reads the COCO set,
and mmseg's ``BaseSegDataset`` (``img_suffix='.jpg'``,
``reduce_zero_label=True``) the ADE20K one (``ADE20KDataset`` itself only
accepts ADE20K's own class names). Each image is drawn from its own random
generator seeded with ``(seed, split, index)``: the same seed gives
byte-identical files, and a larger set starts with the images of a smaller
one.
"""
import json
import numbers
import os
import os.path as osp

import cv2
import numpy as np
from mmengine.utils import track_iter_progress

from mmevit.errors import ConfigError

SHAPES = ('circle', 'square', 'triangle')
#: COCO category ids are 1, 2, 3 in this order.
COCO_CLASSES = SHAPES
COCO_PALETTE = [(220, 20, 60), (0, 128, 255), (60, 180, 75)]
#: ADE20K classes after ``reduce_zero_label`` (label 0 of the PNGs, the thin
#: borders around the shapes, becomes 255 and is ignored).
ADE20K_CLASSES = ('ground', ) + SHAPES
ADE20K_PALETTE = [(150, 120, 80), (220, 40, 40), (40, 190, 70), (50, 80, 230)]

# Saturated object colours of the COCO set, far from its grey background.
OBJECT_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25),
                  (0, 130, 200), (245, 130, 48), (145, 30, 180),
                  (70, 240, 240), (240, 50, 230))
JPEG_QUALITY = 90
CIRCLE_VERTICES = 32
SPLITS = {'train': 0, 'val': 1}  # split -> seed component
EMPTY_EVERY = 10  # COCO images 1, 11, 21, ... have no objects


def make_coco_toy(out_dir,
                  num_train=200,
                  num_val=50,
                  seed=0,
                  min_size=256,
                  max_size=384,
                  show_progress=True):
    """Write a COCO-format detection and instance segmentation set.

    Layout: ``out_dir/{train,val}/000001.jpg, ...`` and
    ``out_dir/annotations/instances_{train,val}.json``. Classes are
    ``circle``, ``square`` and ``triangle`` (category ids 1, 2, 3). Every
    10th image (ids 1, 11, 21, ...) has no objects; the others have 2 to 6
    non-overlapping objects whose ``segmentation`` is the polygon they were
    drawn from.

    Args:
        out_dir (str): Folder to write into; created if missing. Files of an
            earlier run with the same counts are overwritten.
        num_train (int): Number of training images. Defaults to 200.
        num_val (int): Number of validation images. Defaults to 50.
        seed (int): Random seed, >= 0. Defaults to 0.
        min_size (int): Smallest image width or height, at least 32.
            Defaults to 256.
        max_size (int): Largest image width or height. Defaults to 384.
        show_progress (bool): Whether to show a progress bar.
            Defaults to True.

    Returns:
        dict: ``data_root``, ``{train,val}_ann_file``, ``{train,val}_img_dir``
        (absolute paths), ``classes``, ``palette``, ``num_{train,val}`` and
        ``num_{train,val}_annotations``.
    """
    _check_args(num_train, num_val, seed, min_size, max_size)
    counts = {'train': num_train, 'val': num_val}
    names = {split: [f'{i + 1:06d}.jpg' for i in range(n)]
             for split, n in counts.items()}
    _check_out_dir(out_dir, names)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    info = {'data_root': osp.abspath(out_dir), 'classes': COCO_CLASSES,
            'palette': COCO_PALETTE}
    categories = [{'id': k + 1, 'name': name, 'supercategory': 'shape'}
                  for k, name in enumerate(COCO_CLASSES)]
    for split, split_id in SPLITS.items():
        img_dir = osp.join(info['data_root'], split)
        ann_file = osp.join(info['data_root'], 'annotations',
                            f'instances_{split}.json')
        os.makedirs(img_dir, exist_ok=True)
        images, annotations = [], []
        for i in _indices(counts[split], show_progress):
            rng = np.random.default_rng([seed, split_id, i])
            img, shapes = _coco_image(rng, min_size, max_size,
                                      empty=i % EMPTY_EVERY == 0)
            _write_jpg(osp.join(img_dir, names[split][i]), img)
            images.append({'id': i + 1, 'file_name': names[split][i],
                           'width': img.shape[1], 'height': img.shape[0]})
            for name, poly in shapes:
                annotations.append(_coco_annotation(
                    len(annotations) + 1, i + 1, SHAPES.index(name) + 1,
                    poly))
        coco = {'info': {'description': f'mmevit toy shapes, seed {seed}'},
                'licenses': [], 'images': images,
                'annotations': annotations, 'categories': categories}
        with open(ann_file, 'w') as f:
            json.dump(coco, f)
        info.update({f'{split}_ann_file': ann_file,
                     f'{split}_img_dir': img_dir,
                     f'num_{split}': counts[split],
                     f'num_{split}_annotations': len(annotations)})
    return info


def make_ade20k_toy(out_dir,
                    num_train=200,
                    num_val=50,
                    seed=0,
                    min_size=256,
                    max_size=384,
                    show_progress=True):
    """Write an ADE20K-layout semantic segmentation set.

    Layout: ``out_dir/images/{training,validation}/ADE_{train,val}_*.jpg``
    and single-channel PNG label maps of the same stem and size in
    ``out_dir/annotations/{training,validation}``. As in ADE20K, label 0 is
    "other" (the thin borders around the shapes) and labels 1..4 are
    ``ground``, ``circle``, ``square``, ``triangle``; read them with
    ``reduce_zero_label=True`` to get labels 0..3 and 255 for ignore, e.g.
    with mmseg's ``BaseSegDataset`` (``img_suffix='.jpg'``). Each
    class has its own colour on a noisy texture; every image has 1 to 5
    shapes.

    Args:
        out_dir (str): Folder to write into; created if missing. Files of an
            earlier run with the same counts are overwritten.
        num_train (int): Number of training images. Defaults to 200.
        num_val (int): Number of validation images. Defaults to 50.
        seed (int): Random seed, >= 0. Defaults to 0.
        min_size (int): Smallest image width or height, at least 32.
            Defaults to 256.
        max_size (int): Largest image width or height. Defaults to 384.
        show_progress (bool): Whether to show a progress bar.
            Defaults to True.

    Returns:
        dict: ``data_root``, ``{train,val}_img_dir``, ``{train,val}_ann_dir``
        (absolute paths), ``classes`` and ``palette`` (after
        ``reduce_zero_label``), and ``num_{train,val}``.
    """
    _check_args(num_train, num_val, seed, min_size, max_size)
    counts = {'train': num_train, 'val': num_val}
    folders = {'train': 'training', 'val': 'validation'}
    stems = {split: [f'ADE_{split}_{i + 1:08d}' for i in range(n)]
             for split, n in counts.items()}
    expected = {}
    for split in SPLITS:
        expected[osp.join('images', folders[split])] = [
            f'{stem}.jpg' for stem in stems[split]]
        expected[osp.join('annotations', folders[split])] = [
            f'{stem}.png' for stem in stems[split]]
    _check_out_dir(out_dir, expected)
    info = {'data_root': osp.abspath(out_dir), 'classes': ADE20K_CLASSES,
            'palette': ADE20K_PALETTE}
    for split, split_id in SPLITS.items():
        img_dir = osp.join(info['data_root'], 'images', folders[split])
        ann_dir = osp.join(info['data_root'], 'annotations', folders[split])
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in _indices(counts[split], show_progress):
            rng = np.random.default_rng([seed, split_id, i])
            img, label = _ade20k_image(rng, min_size, max_size)
            _write_jpg(osp.join(img_dir, f'{stems[split][i]}.jpg'), img)
            cv2.imwrite(osp.join(ann_dir, f'{stems[split][i]}.png'), label)
        info.update({f'{split}_img_dir': img_dir, f'{split}_ann_dir': ann_dir,
                     f'num_{split}': counts[split]})
    return info


def _check_args(num_train, num_val, seed, min_size, max_size):
    """Raise ConfigError naming the first invalid argument."""
    for name, value, least in (('num_train', num_train, 1),
                               ('num_val', num_val, 1),
                               ('seed', seed, 0),
                               ('min_size', min_size, 32),
                               ('max_size', max_size, 32)):
        if not isinstance(value, numbers.Integral) or value < least:
            raise ConfigError(
                f'{name} must be an integer >= {least}, got {value!r}')
    if min_size > max_size:
        raise ConfigError(f'min_size ({min_size}) must be <= max_size '
                         f'({max_size})')


def _check_out_dir(out_dir, expected):
    """Refuse an ``out_dir`` that is a file, or whose output folders hold
    files this run would not overwrite (a dataset that lists its folders
    would pick them up). Nothing is ever deleted.

    Args:
        out_dir (str): The output folder.
        expected (dict[str, list[str]]): Sub-folder -> file names to write.
    """
    if osp.isfile(out_dir):
        raise ConfigError(f'out_dir {out_dir!r} is a file, expected a folder')
    for sub, names in expected.items():
        folder = osp.join(out_dir, sub)
        if not osp.isdir(folder):
            continue
        stale = sorted(set(os.listdir(folder)) - set(names))
        if stale:
            raise ConfigError(
                f'{osp.join(folder, stale[0])} is not part of the requested '
                f'set ({len(names)} images); use an empty out_dir or remove '
                f'the {len(stale)} extra file(s)')


def _indices(num, show_progress):
    """``range(num)``, with a progress bar if ``show_progress``."""
    if show_progress:
        return track_iter_progress(list(range(num)))
    return range(num)


def _image_size(rng, min_size, max_size):
    """Random (width, height), each drawn from [min_size, max_size]."""
    width, height = rng.integers(min_size, max_size + 1, size=2)
    return int(width), int(height)


def _textured_background(rng, height, width, colour, amplitude):
    """RGB uint8 image: ``colour`` with smooth light and dark blotches of
    about 32 px."""
    coarse = rng.normal(size=(max(height // 32, 2), max(width // 32, 2)))
    blotches = cv2.resize(coarse.astype(np.float32), (width, height),
                          interpolation=cv2.INTER_CUBIC)
    return _to_uint8(np.asarray(colour) + amplitude * blotches[..., None])


def _add_noise(rng, img, sigma):
    """``img`` plus Gaussian pixel noise of std ``sigma``."""
    return _to_uint8(img + rng.normal(scale=sigma, size=img.shape))


def _to_uint8(img):
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _polygon_for(shape, cx, cy, radius, angle):
    """Vertices (N, 2) of a regular polygon approximating ``shape``.

    Args:
        shape (str): ``'circle'`` (32 vertices), ``'square'`` or
            ``'triangle'``.
        cx (float): Centre x.
        cy (float): Centre y.
        radius (float): Circumradius.
        angle (float): Rotation in radians.

    Returns:
        np.ndarray: The vertices rounded to 0.01 px, as written to the
        annotation file.
    """
    num = {'circle': CIRCLE_VERTICES, 'square': 4, 'triangle': 3}[shape]
    theta = angle + 2 * np.pi * np.arange(num) / num
    poly = np.stack([cx + radius * np.cos(theta),
                     cy + radius * np.sin(theta)], axis=1)
    return np.round(poly, 2)


def _random_shapes(rng, width, height, num, max_radius_ratio):
    """Place up to ``num`` non-overlapping random shapes inside the image.

    Shapes are rejected when their circumcircles meet; after 20 rejections
    in a row no more shapes are placed.

    Args:
        rng (np.random.Generator): Random generator.
        width (int): Image width.
        height (int): Image height.
        num (int): Number of shapes wanted.
        max_radius_ratio (float): Largest circumradius as a fraction of the
            shorter image side.

    Returns:
        list[tuple[str, np.ndarray]]: Shape name and polygon vertices.
    """
    max_radius = max_radius_ratio * min(width, height)
    min_radius = min(10., max_radius)  # shapes are at least ~20 px across
    circles, shapes, rejected = [], [], 0
    while len(shapes) < num and rejected < 20:
        radius = rng.uniform(min_radius, max_radius)
        cx = rng.uniform(radius, width - radius)
        cy = rng.uniform(radius, height - radius)
        if any(np.hypot(cx - x, cy - y) < radius + r for x, y, r in circles):
            rejected += 1
            continue
        rejected = 0
        circles.append((cx, cy, radius))
        shape = SHAPES[rng.integers(len(SHAPES))]
        shapes.append((shape, _polygon_for(shape, cx, cy, radius,
                                           rng.uniform(0, 2 * np.pi))))
    return shapes


def _cv2_points(poly):
    """Polygon vertices in COCO coordinates -> cv2 points with ``shift=4``.

    COCO puts integer coordinates at pixel corners, cv2 at pixel centres,
    hence the half-pixel shift; 4 fractional bits keep sub-pixel precision.
    """
    return [np.round((poly - 0.5) * 16).astype(np.int32)]


def _draw_polygon(img, poly, value, line_type=cv2.LINE_8):
    """Fill ``poly`` (N, 2) in COCO coordinates with ``value`` on ``img``."""
    cv2.fillPoly(img, _cv2_points(poly), value, lineType=line_type, shift=4)


def _coco_image(rng, min_size, max_size, empty):
    """One RGB picture and its shapes (none if ``empty``)."""
    width, height = _image_size(rng, min_size, max_size)
    grey = rng.uniform(70, 150) + rng.uniform(-15, 15, size=3)
    img = _textured_background(rng, height, width, grey, amplitude=25)
    shapes = [] if empty else _random_shapes(rng, width, height,
                                             rng.integers(2, 7), 0.25)
    for _, poly in shapes:
        colour = OBJECT_COLOURS[rng.integers(len(OBJECT_COLOURS))]
        _draw_polygon(img, poly, colour, cv2.LINE_AA)
    return _add_noise(rng, img, sigma=6), shapes


def _coco_annotation(ann_id, img_id, category_id, poly):
    """COCO annotation dict of one polygon."""
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return {'id': ann_id, 'image_id': img_id, 'category_id': category_id,
            'segmentation': [[float(v) for v in poly.ravel()]],
            'area': round(float(area), 2),
            'bbox': [float(x0), float(y0), round(float(x1 - x0), 2),
                     round(float(y1 - y0), 2)],
            'iscrowd': 0}


def _ade20k_image(rng, min_size, max_size):
    """One RGB picture and its ADE20K label map (0 = borders, 1 = ground,
    2.. = shapes)."""
    width, height = _image_size(rng, min_size, max_size)
    img = _textured_background(rng, height, width, ADE20K_PALETTE[0],
                               amplitude=25)
    label = np.ones((height, width), np.uint8)
    for shape, poly in _random_shapes(rng, width, height, rng.integers(1, 6),
                                      0.35):
        k = ADE20K_CLASSES.index(shape)
        colour = np.asarray(ADE20K_PALETTE[k]) + rng.uniform(-20, 20, 3)
        _draw_polygon(img, poly, colour.tolist())
        _draw_polygon(label, poly, k + 1)
        cv2.polylines(label, _cv2_points(poly), True, 0, thickness=2,
                      shift=4)
    return _add_noise(rng, img, sigma=10), label


def _write_jpg(path, rgb):
    """Write an RGB uint8 image as a JPEG of fixed quality."""
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
