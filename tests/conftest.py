"""Shared fixtures: small synthetic datasets made once per test session."""
import pytest

from mmevit.datasets import make_coco_toy


@pytest.fixture(scope='session')
def toy_coco(tmp_path_factory):
    """A tiny COCO-format shapes set (8 train, 4 val images)."""
    root = tmp_path_factory.mktemp('toy_coco')
    return make_coco_toy(str(root), num_train=8, num_val=4, min_size=96,
                         max_size=160, show_progress=False)
