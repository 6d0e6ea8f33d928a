from .toy_data import make_ade20k_toy, make_coco_toy

__all__ = ['make_coco_toy', 'make_ade20k_toy']
