"""The model inside the wrappers a runner may put around it."""
from mmengine.model import BaseTTAModel, is_model_wrapper


def unwrap_model(model):
    """The detector or segmentor inside ``model``'s wrappers: distributed
    ones (DDP) and test-time augmentation (``tools/test.py --tta``), whose
    checkpoint, heads and classes are the wrapped model's."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model
