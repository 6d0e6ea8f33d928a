"""The Runner of mmevit's tools: mmengine's, with strict checkpoint loading."""
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.runner import Runner

from ..checkpoint import load_checkpoint_file
from ..registry import RUNNERS
from .model_loading import load_model_weights


@RUNNERS.register_module()
class StrictLoadRunner(Runner):
    """mmengine's :class:`Runner` that refuses a checkpoint whose keys or
    shapes do not fit the model, for ``load_from``, ``resume`` and testing
    alike (mmengine only warns and keeps random weights, or fails later in
    the optimizer's state). Official EfficientViT detector checkpoints are
    converted first.

    Only the public :meth:`load_checkpoint` is overridden: mmengine's
    ``load_or_resume`` and ``resume`` call it, so a refused checkpoint stops
    a run before any training step and before any optimizer or scheduler
    state is touched.

    Configs can select it with ``runner_type='mmevit.StrictLoadRunner'`` (or
    the plain name, see :mod:`mmevit.import_changes`); mmevit's tools use it
    unless the config names another runner.
    """

    def load_checkpoint(self, filename, map_location='cpu', strict=True,
                        revise_keys=((r'^module\.', ''), )):
        """Load the model weights of ``filename`` strictly.

        Args:
            filename (str): Local checkpoint file (``.pth``, ``.safetensors``)
                or, with ``strict=False``, anything mmengine loads.
            map_location (str | callable): As for ``torch.load``.
                Defaults to 'cpu'.
            strict (bool): False falls back to mmengine's lenient loading
                (missing and unexpected keys only warned about). Defaults
                to True.
            revise_keys (list): Used by the lenient loading only; the strict
                one removes ``module.`` prefixes. Defaults to that.

        Returns:
            dict: The checkpoint (meta, optimizer state ... as saved).

        Raises:
            CheckpointError: One line naming the file, the keys that do not
                fit and, where it tells, the arch the weights look like.
        """
        if not strict:
            return super().load_checkpoint(filename, map_location, strict,
                                           revise_keys)
        checkpoint = load_checkpoint_file(filename, map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_model_weights(self.model, checkpoint, filename)
        self.logger.info(f'Loaded checkpoint {filename} (strict)')
        return checkpoint


def build_runner(cfg):
    """The runner of the tools, as mmdet's tools build it: the config's
    ``runner_type`` when it sets one (any runner registered in mmengine),
    else :class:`StrictLoadRunner`."""
    if cfg.get('runner_type'):
        return MMENGINE_RUNNERS.build(cfg)
    return StrictLoadRunner.from_cfg(cfg)
