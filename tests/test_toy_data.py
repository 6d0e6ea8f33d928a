"""Synthetic COCO / ADE20K data: formats, geometry, determinism, arguments."""
import json
import math
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmevit.errors import ConfigError
from mmevit.tools.toy_shapes import make_ade20k_toy, make_coco_toy
from tests.helpers import load_tool

SMALL = dict(num_train=6, num_val=3, min_size=64, max_size=128,
             show_progress=False)
MAKERS = [make_coco_toy, make_ade20k_toy]
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    info = make_coco_toy(str(tmp_path_factory.mktemp('coco')), **SMALL)
    splits = [(COCO(info[f'{split}_ann_file']), info[f'{split}_img_dir'])
              for split in ('train', 'val')]
    return info, splits


@pytest.fixture(scope='module')
def ade20k(tmp_path_factory):
    return make_ade20k_toy(str(tmp_path_factory.mktemp('ade20k')), **SMALL)


def read_tree(root):
    """{relative path: bytes} of every file under ``root``."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


def test_coco_layout_and_categories(coco):
    info, splits = coco
    assert [len(api.imgs) for api, _ in splits] == [6, 3]
    assert info['num_train_annotations'] == len(splits[0][0].anns)
    for api, img_dir in splits:
        assert [(c['id'], c['name']) for c in api.loadCats(api.getCatIds())] \
            == [(1, 'circle'), (2, 'square'), (3, 'triangle')]
        assert sorted(os.listdir(img_dir)) == sorted(
            img['file_name'] for img in api.imgs.values())
        assert len({ann['id'] for ann in api.anns.values()}) == len(api.anns)


def test_coco_image_sizes_match_json_and_vary(coco):
    _, splits = coco
    sizes = []
    for api, img_dir in splits:
        for img in api.imgs.values():
            with Image.open(osp.join(img_dir, img['file_name'])) as pic:
                assert pic.size == (img['width'], img['height'])
            assert 64 <= img['width'] <= 128 and 64 <= img['height'] <= 128
            sizes.append((img['width'], img['height']))
    assert len(set(sizes)) > 1
    assert len({round(w / h, 2) for w, h in sizes}) >= 2


def test_coco_has_images_without_objects(coco):
    _, splits = coco
    for api, _ in splits:
        empty = [i for i in api.imgs if not api.getAnnIds(imgIds=i)]
        assert empty and len(empty) < len(api.imgs)


def test_coco_bbox_area_match_polygon(coco):
    _, splits = coco
    for api, _ in splits:
        for ann in api.anns.values():
            assert ann['iscrowd'] == 0 and ann['category_id'] in (1, 2, 3)
            assert len(ann['segmentation']) == 1
            poly = np.array(ann['segmentation'][0]).reshape(-1, 2)
            assert len(poly) in (3, 4) or len(poly) >= 16
            x0, y0 = poly.min(0)
            x1, y1 = poly.max(0)
            np.testing.assert_allclose(ann['bbox'], [x0, y0, x1 - x0, y1 - y0],
                                       atol=0.011)
            img = api.imgs[ann['image_id']]
            assert x0 >= 0 and y0 >= 0
            assert x1 <= img['width'] and y1 <= img['height']
            assert ann['bbox'][2] >= 8 and ann['bbox'][3] >= 8
            assert 0 < ann['area'] <= ann['bbox'][2] * ann['bbox'][3]


def test_coco_masks_inside_bbox_and_drawn(coco):
    _, splits = coco
    for api, img_dir in splits:
        for ann in api.anns.values():
            mask = api.annToMask(ann)
            ys, xs = np.nonzero(mask)
            assert len(xs) > 0
            x, y, w, h = ann['bbox']
            assert xs.min() >= math.floor(x) and xs.max() < math.ceil(x + w)
            assert ys.min() >= math.floor(y) and ys.max() < math.ceil(y + h)
            assert abs(mask.sum() - ann['area']) < 0.25 * ann['area'] + 10
            # the picture shows the shape where the mask is
            file = api.imgs[ann['image_id']]['file_name']
            pic = cv2.imread(osp.join(img_dir, file)).astype(float)
            kernel = np.ones((3, 3), np.uint8)
            inside = cv2.erode(mask, kernel) > 0
            ring = (cv2.dilate(mask, kernel, iterations=3) - mask) > 0
            gap = pic[inside].mean(0) - pic[ring].mean(0)
            assert np.linalg.norm(gap) > 40


def test_ade20k_layout_and_labels(ade20k):
    info = ade20k
    assert info['classes'] == ('ground', 'circle', 'square', 'triangle')
    assert len(info['palette']) == len(info['classes'])
    num_classes = len(info['classes'])
    seen, sizes = set(), set()
    for split, count in (('train', 6), ('val', 3)):
        images = sorted(os.listdir(info[f'{split}_img_dir']))
        labels = sorted(os.listdir(info[f'{split}_ann_dir']))
        assert len(images) == count
        assert [osp.splitext(n)[0] for n in images] == \
            [osp.splitext(n)[0] for n in labels]
        assert all(n.endswith('.jpg') for n in images)
        for img_name, label_name in zip(images, labels):
            with Image.open(osp.join(info[f'{split}_img_dir'],
                                     img_name)) as pic:
                size = pic.size
            with Image.open(osp.join(info[f'{split}_ann_dir'],
                                     label_name)) as label_pic:
                assert label_pic.mode == 'L' and label_pic.size == size
                label = np.asarray(label_pic)
            assert label.max() <= num_classes
            assert (label == 0).mean() < 0.2  # ignored borders stay thin
            seen.update(np.unique(label).tolist())
            sizes.add(size)
    assert seen == set(range(num_classes + 1))
    assert len({round(w / h, 2) for w, h in sizes}) >= 2
    assert any(w % 64 or h % 64 for w, h in sizes)


@pytest.mark.parametrize('maker', MAKERS)
def test_same_seed_same_bytes(maker, tmp_path):
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        maker(str(tmp_path / name), seed=seed, **SMALL)
    first, again, other = (read_tree(tmp_path / n) for n in 'abc')
    assert first == again
    assert first.keys() == other.keys()
    assert any(first[k] != other[k] for k in first)
    if maker is make_coco_toy:
        ann_file = osp.join('annotations', 'instances_train.json')
        assert first[ann_file] != other[ann_file]


@pytest.mark.parametrize('maker', MAKERS)
def test_rerun_overwrites_but_refuses_stale_files(maker, tmp_path):
    maker(str(tmp_path), **SMALL)
    before = read_tree(tmp_path)
    maker(str(tmp_path), **SMALL)
    assert read_tree(tmp_path) == before
    with pytest.raises(ConfigError, match='not part of the requested set'):
        maker(str(tmp_path), **dict(SMALL, num_train=2))
    assert read_tree(tmp_path) == before  # nothing deleted or rewritten


@pytest.mark.parametrize('maker', MAKERS)
@pytest.mark.parametrize('kwargs, bad', [
    (dict(num_train=0), 'num_train'),
    (dict(num_val=-2), 'num_val'),
    (dict(num_train=2.5), 'num_train'),
    (dict(seed=-1), 'seed'),
    (dict(min_size=16), 'min_size'),
    (dict(min_size=100, max_size=80), 'max_size'),
])
def test_bad_arguments(maker, kwargs, bad, tmp_path):
    value = kwargs[bad]
    with pytest.raises(ConfigError, match=re.escape(bad)) as err:
        maker(str(tmp_path / 'out'), **dict(SMALL, **kwargs))
    assert str(value) in str(err.value)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('maker', MAKERS)
def test_out_dir_is_file(maker, tmp_path):
    path = tmp_path / 'taken'
    path.write_text('keep me')
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        maker(str(path), **SMALL)
    assert path.read_text() == 'keep me'


def test_cli(tmp_path, capsys):
    main = load_tool('data/make_toy_data').main
    main(['coco', str(tmp_path / 'coco'), '--num-train', '2', '--num-val',
          '1', '--seed', '5'])
    out = capsys.readouterr().out
    assert '2 train / 1 val images' in out
    ann_file = tmp_path / 'coco' / 'annotations' / 'instances_train.json'
    assert str(ann_file) in out
    assert len(json.loads(ann_file.read_text())['images']) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(['ade20k', str(ann_file)])
    assert exit_info.value.code == 2
    assert 'is a file' in capsys.readouterr().err
