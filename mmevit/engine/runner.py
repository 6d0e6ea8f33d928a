"""The Runner of mmevit's tools: mmengine's, with ``load_from`` strict."""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..checkpoint import load_checkpoint_file, load_model_weights


@RUNNERS.register_module()
class StrictLoadRunner(Runner):
    """mmengine's :class:`Runner` that refuses a ``load_from`` checkpoint
    whose keys or shapes do not fit the model (mmengine only warns and
    keeps random weights). Official EfficientViT detector checkpoints are
    converted first. ``resume`` keeps mmengine's behaviour.

    Configs can select it with ``runner_type='StrictLoadRunner'``; mmevit's
    tools always use it.
    """

    def load_or_resume(self):
        if self._has_loaded or self._resume or self._load_from is None:
            return super().load_or_resume()
        checkpoint = load_checkpoint_file(self._load_from)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_model_weights(self.model, checkpoint, self._load_from)
        self._has_loaded = True
        self.logger.info(f'Loaded checkpoint {self._load_from} (strict)')
