"""Deterministic, resumable, rank-aware batching.

Every global batch k of epoch e is `perm_e[k*B:(k+1)*B]` with `perm_e` a permutation seeded by
(seed, e); under torchrun rank r takes the r-th equal slice of it, and a resumed run skips the
batches it already did without loading them. With `seed_samples` each sample is drawn with its own
seed, so augmentation noise is the same whether the batch is split over ranks or not and whether
the run was resumed (the engine turns it on in deterministic mode and under torchrun, where it also
keeps ranks from drawing correlated noise; it costs ~25 us a sample).
"""
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from torch.utils.data._utils.collate import default_collate

from modules.utils import ShapeLabError


def sample_seed(seed, epoch, index):
    return (seed * 1_000_003 + epoch * 100_003 + index) % (2**31 - 1)


class GlobalBatchSampler(Sampler):
    """Yields lists of (index, sample_seed) for this rank's share of each global batch."""

    def __init__(self, num_samples, batch_size, seed=0, rank=0, world_size=1, shuffle=True, drop_last=True):
        if batch_size % world_size:
            raise ShapeLabError(f"training.batch_size {batch_size} must be divisible by the number of processes {world_size}")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch, skip_batches=0):
        self.epoch, self.skip = epoch, skip_batches

    def __len__(self):
        full = self.num_samples // self.batch_size
        return full if self.drop_last or self.num_samples % self.batch_size == 0 else full + 1

    def _permutation(self, epoch):
        if not self.shuffle:
            return list(range(self.num_samples))
        if getattr(self, "_perm_epoch", None) != epoch:
            g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.num_samples, generator=g).tolist(), epoch
        return self._perm

    def local_batch(self, k, epoch=None):
        """This rank's [(index, sample seed)] of global batch k of `epoch` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        batch = self._permutation(epoch)[k * self.batch_size:(k + 1) * self.batch_size]
        local = self.batch_size // self.world_size
        mine = batch[self.rank * local:(self.rank + 1) * local] if self.world_size > 1 else batch
        return [(i, sample_seed(self.seed, epoch, i)) for i in mine]

    def __iter__(self):
        epoch = self.epoch
        for k in range(self.skip, len(self)):
            yield self.local_batch(k, epoch)


class SeededDataset(torch.utils.data.Dataset):
    """Draws item i with torch, numpy and random seeded for it.

    Only torch's global state is restored afterwards (the model's dropout draws from it); the
    engine keeps no state in numpy's or Python's global generators. torch.default_generator is
    seeded directly because torch.manual_seed also seeds every accelerator (~0.4 ms a call).
    """

    def __init__(self, dataset, seed_samples=True):
        self.dataset, self.seed_samples = dataset, seed_samples

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys):
        if not self.seed_samples:
            return [self.dataset[index] for index, _ in keys]
        torch_state = torch.get_rng_state()
        try:
            items = []
            for index, seed in keys:
                torch.default_generator.manual_seed(seed)
                np.random.seed(seed)
                random.seed(seed)
                items.append(self.dataset[index])
            return items
        finally:
            torch.set_rng_state(torch_state)


def make_loader(dataset, batch_size, seed, rank=0, world_size=1, shuffle=True, drop_last=True, num_workers=0,
                seed_samples=True):
    if len(dataset) == 0:
        raise ShapeLabError("the dataset is empty (check data.root and the split files)")
    if drop_last and len(dataset) < batch_size:
        raise ShapeLabError(f"the dataset has {len(dataset)} samples, fewer than training.batch_size {batch_size}")
    sampler = GlobalBatchSampler(len(dataset), batch_size, seed, rank, world_size, shuffle, drop_last)
    collate = getattr(dataset, "collate", default_collate)
    loader = DataLoader(SeededDataset(dataset, seed_samples), batch_sampler=sampler, collate_fn=collate,
                        num_workers=num_workers, generator=torch.Generator().manual_seed(seed),
                        persistent_workers=False)
    return loader, sampler


def to_device(batch, device):
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
