"""mmevit's registries: the ``mmevit`` scope of mmengine's registry tree.

mmevit's models, hooks, runner, training loop and checked COCO dataset
are registered here, in children of mmengine's root ``MODELS``, ``HOOKS``,
``RUNNERS``, ``LOOPS`` and ``DATASETS`` with scope ``mmevit``.
``type='mmevit.EfficientViT'`` in an mmdet or mmseg config makes mmengine
import this module and look the name up in the child (the convention of
``mmpretrain.ConvNeXt`` in mmdet's configs). The plain names
(``type='EfficientViT'``) that existing configs use are aliases that
``import mmevit`` adds to the root registries (:mod:`mmevit.import_changes`).
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmevit',
                  locations=['mmevit.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmevit',
                 locations=['mmevit.engine'])
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope='mmevit',
                   locations=['mmevit.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='mmevit',
                 locations=['mmevit.engine'])
# Its module imports mmdet: imported when a config names one of its types.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='mmevit',
                    locations=['mmevit.engine.coco_check'])
