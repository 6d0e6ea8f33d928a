"""mmevit's registry: the ``mmevit`` scope of mmengine's registry tree.

``type='mmevit.EfficientViT'`` in an mmdet or mmseg config makes mmengine
import this module and look the name up in the root registry's child with
scope ``mmevit`` (the convention of ``mmpretrain.ConvNeXt`` in mmdet's
configs). The models themselves are registered in mmengine's root ``MODELS``,
which this registry falls back to, so the plain names ``EfficientViT`` and
``EfficientViTFPN`` build from every OpenMMLab codebase as well.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmevit',
                  locations=['mmevit.models'])
