"""The Runner of mmevit's tools: mmengine's, with strict checkpoint loading,
exactly resumable epoch-based training and the COCO annotation check."""
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.runner import EpochBasedTrainLoop, Runner

from ..checkpoint import load_checkpoint_file
from ..errors import CheckpointError
from ..registry import RUNNERS
from .exact_resume import ExactResumeEpochBasedTrainLoop
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

    Epoch-based training runs in :class:`ExactResumeEpochBasedTrainLoop`:
    a resumed run, also one resumed in the middle of an epoch, repeats the
    uninterrupted run.

    Configs can select it with ``runner_type='mmevit.StrictLoadRunner'`` (or
    the plain name, see :mod:`mmevit.import_changes`); mmevit's tools use it
    unless the config names another runner.
    """

    #: True while :meth:`resume` loads its checkpoint.
    _resuming = False

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
        if self._resuming:
            check_resumable(checkpoint, filename)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_model_weights(self.model, checkpoint, filename)
        self.logger.info(f'Loaded checkpoint {filename} (strict)')
        return checkpoint

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        """mmengine's, loading mmdet's ``CocoDataset`` (also inside dataset
        wrappers) as :class:`~mmevit.engine.coco_check.CheckedCocoDataset`,
        which warns about the annotations mmdet drops silently."""
        if isinstance(dataloader, dict):
            dataloader = dict(dataloader,
                              dataset=with_checked_coco(dataloader['dataset']))
        return Runner.build_dataloader(dataloader, seed, diff_rank_seed)

    def build_train_loop(self, loop):
        """mmengine's, with :class:`ExactResumeEpochBasedTrainLoop` in place
        of ``EpochBasedTrainLoop`` (named or as ``by_epoch=True``)."""
        if isinstance(loop, dict):
            loop = dict(loop)
            if loop.get('type') in ('EpochBasedTrainLoop',
                                    EpochBasedTrainLoop):
                loop['type'] = ExactResumeEpochBasedTrainLoop
            elif 'type' not in loop and loop.get('by_epoch'):
                del loop['by_epoch']
                loop['type'] = ExactResumeEpochBasedTrainLoop
        return super().build_train_loop(loop)

    def resume(self, filename, *args, **kwargs):
        """mmengine's :meth:`Runner.resume`, refusing a checkpoint that lacks
        the training state (``meta.epoch`` and ``meta.iter``) with a
        :class:`CheckpointError` naming the file, before any weight is
        loaded (mmengine fails on it with a bare ``KeyError``)."""
        self._resuming = True
        try:
            return super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False


def with_checked_coco(dataset):
    """A copy of the dataset config ``dataset`` with every mmdet
    ``CocoDataset`` (inside wrappers too) made ``mmevit.CheckedCocoDataset``;
    anything else as it is."""
    if not isinstance(dataset, dict):
        return dataset
    dataset = dict(dataset)
    if dataset.get('type') in ('CocoDataset', 'mmdet.CocoDataset'):
        dataset['type'] = 'mmevit.CheckedCocoDataset'
    if isinstance(dataset.get('dataset'), dict):
        dataset['dataset'] = with_checked_coco(dataset['dataset'])
    if isinstance(dataset.get('datasets'), (list, tuple)):
        dataset['datasets'] = [with_checked_coco(d)
                               for d in dataset['datasets']]
    return dataset


def check_resumable(checkpoint, filename):
    """Raise a :class:`CheckpointError` naming ``filename`` when the loaded
    ``checkpoint`` has no ``meta`` with the epoch and iteration a resumed
    run continues from."""
    meta = checkpoint.get('meta')
    missing = [key for key in ('epoch', 'iter')
               if not isinstance(meta, dict) or key not in meta]
    if missing:
        what = 'no meta' if not isinstance(meta, dict) else \
            f'no meta.{" or meta.".join(missing)}'
        raise CheckpointError(
            f'cannot resume from {filename}: it has {what} (the epoch and '
            'iteration a training run saves), so it holds weights only; '
            f'start a new run from its weights with --cfg-options '
            f'load_from={filename} instead of --resume')


def build_runner(cfg):
    """The runner of the tools, as mmdet's tools build it: the config's
    ``runner_type`` when it sets one (any runner registered in mmengine),
    else :class:`StrictLoadRunner`."""
    if cfg.get('runner_type'):
        return MMENGINE_RUNNERS.build(cfg)
    return StrictLoadRunner.from_cfg(cfg)
