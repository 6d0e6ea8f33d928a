"""An epoch-based training loop whose resumed runs repeat the uninterrupted
run exactly, also when resumed in the middle of an epoch.

mmengine seeds its random streams once, when the runner is built. A resumed
run therefore draws other augmentations (in the main process and in every
data-loader worker, whose streams persistent workers keep across epochs)
and other model randomness (drop path) than the run it continues; an
epoch-based run resumed from a checkpoint saved in the middle of an epoch
also starts that epoch again from its first batch.

:class:`ExactResumeEpochBasedTrainLoop` makes every random draw of training
a function of the run's seed and the place in the run:

- a sample's pipeline (augmentations) runs with Python's, NumPy's and
  torch's global generators seeded from ``(seed, epoch, sample index)``,
  whichever process loads it (so the number of workers, and whether they
  persist, change nothing), and the generators of that process are put back
  afterwards;
- each iteration's training step runs with those generators seeded from
  ``(seed, iteration)``;
- the batches of the epoch already trained are recorded in the message hub
  (``batches_done_in_epoch``, saved with every checkpoint); a run resumed
  from a checkpoint saved in the middle of an epoch skips them in the batch
  sampler (no data loaded) and trains the rest of that epoch.

The sample order is the sampler's (mmengine's ``DefaultSampler`` shuffles
from ``seed + epoch``); mmengine restores the seed of a resumed run from the
checkpoint.
"""
import random

import numpy as np
import torch
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader, Dataset

from ..registry import LOOPS

#: Message-hub key: batches of the current epoch trained so far.
BATCHES_DONE_KEY = 'batches_done_in_epoch'


def derived_seed(*key):
    """A 64-bit seed drawn from non-negative ints ``key`` (NumPy's
    ``SeedSequence``: close keys give unrelated seeds)."""
    low, high = np.random.SeedSequence(list(key)).generate_state(2)
    return int(low) | int(high) << 32


def seed_global_generators(seed):
    """Seed Python's, NumPy's and torch's global generators (torch's on
    every device) from the 64-bit ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class SampleSeededDataset(Dataset):
    """``dataset`` loaded with keys ``(epoch, index)``: each sample's
    pipeline runs with the global generators seeded from
    ``(seed, epoch, index)``, and the generators of the loading process are
    restored afterwards. Other attributes are the wrapped dataset's (hooks
    read ``metainfo`` and replace ``pipeline``).

    Args:
        dataset (Dataset): The dataset the runner built.
        seed (int): The run's seed. Defaults to 0.
    """

    _own = ('dataset', 'seed')

    def __init__(self, dataset, seed=0):
        object.__setattr__(self, 'dataset', dataset)
        object.__setattr__(self, 'seed', seed)

    def __getattr__(self, name):
        if name in self._own or name.startswith('__'):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __setattr__(self, name, value):
        if name in self._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.dataset, name, value)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key
        states = (random.getstate(), np.random.get_state(),
                  torch.get_rng_state())
        try:
            seed_global_generators(derived_seed(self.seed, epoch, index))
            return self.dataset[index]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


class EpochBatchSampler:
    """The batches of ``batch_sampler`` as ``(epoch, index)`` keys of
    :class:`SampleSeededDataset`, leaving out the first ``skip`` batches of
    an epoch (:meth:`start`).

    Args:
        batch_sampler (Iterable[list[int]]): The loader's batch sampler.
    """

    def __init__(self, batch_sampler):
        self.batch_sampler = batch_sampler
        self.epoch = 0
        self.skip = 0

    @property
    def sampler(self):
        """The sampler of the wrapped batch sampler (mmengine's
        ``DistSamplerSeedHook`` sets its epoch)."""
        return self.batch_sampler.sampler

    def start(self, epoch, skip=0):
        """Key the next pass with ``epoch`` and leave out its first ``skip``
        batches."""
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        epoch, skip = self.epoch, self.skip
        for position, batch in enumerate(self.batch_sampler):
            if position >= skip:
                yield [(epoch, index) for index in batch]

    def __len__(self):
        return len(self.batch_sampler)


def sample_seeded_loader(loader, seed):
    """A DataLoader like ``loader`` (not yet iterated) that loads
    :class:`SampleSeededDataset` keys through an :class:`EpochBatchSampler`.
    """
    options = dict(
        num_workers=loader.num_workers, collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory, timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator, prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device)
    if hasattr(loader, 'in_order'):  # torch >= 2.6
        options['in_order'] = loader.in_order
    return DataLoader(SampleSeededDataset(loader.dataset, seed),
                      batch_sampler=EpochBatchSampler(loader.batch_sampler),
                      **options)


@LOOPS.register_module()
class ExactResumeEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's :class:`EpochBasedTrainLoop` with randomness derived from
    the place in the run (see :mod:`mmevit.engine.exact_resume`), so that a
    run resumed from any checkpoint of the same config and number of
    processes trains the same batches with the same augmentations and model
    randomness as the uninterrupted run. Takes EpochBasedTrainLoop's
    arguments; mmevit's runner uses it for every ``EpochBasedTrainLoop``.
    """

    def __init__(self, runner, dataloader, *args, **kwargs):
        super().__init__(runner, dataloader, *args, **kwargs)
        self.dataloader = sample_seeded_loader(self.dataloader, runner.seed)

    def run(self):
        """Train from the place the run was resumed at: the seed (restored
        by a resume) keys the samples and, where the sampler has one, the
        shuffling."""
        seed = self.runner.seed
        self.dataloader.dataset.seed = seed
        sampler = self.dataloader.batch_sampler.sampler
        randomness = self.runner.cfg.get('randomness') or {}
        if hasattr(sampler, 'seed') and not randomness.get('diff_rank_seed'):
            sampler.seed = seed  # as the sampler got it when built
        return super().run()

    def run_epoch(self):
        """Train the epoch's batches not trained yet."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self.runner.message_hub.get_info(BATCHES_DONE_KEY, 0)
        self.dataloader.batch_sampler.start(self._epoch, done)
        for idx, data_batch in enumerate(self.dataloader, start=done):
            self.run_iter(idx, data_batch)
        self.runner.message_hub.update_info(BATCHES_DONE_KEY, 0)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch):
        """One training step with the generators seeded from the iteration;
        the batch counts as trained before the ``after_train_iter`` hooks
        (which may save a checkpoint) run."""
        self.runner.call_hook('before_train_iter', batch_idx=idx,
                              data_batch=data_batch)
        seed_global_generators(derived_seed(self.runner.seed, self._iter))
        outputs = self.runner.model.train_step(
            data_batch, optim_wrapper=self.runner.optim_wrapper)
        self.runner.message_hub.update_info(BATCHES_DONE_KEY, idx + 1)
        self.runner.call_hook('after_train_iter', batch_idx=idx,
                              data_batch=data_batch, outputs=outputs)
        self._iter += 1
