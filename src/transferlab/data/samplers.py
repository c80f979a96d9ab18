"""The balanced sampler: rare classes drawn as often as common ones, in an order fixed by ``(seed, epoch)``.

``data.sampler=balanced`` replaces the training shuffle by draws with replacement, one per training sample and
epoch, each sample weighted by the inverse frequency of its class, so every class is expected equally often
in a batch. For multi-label data a sample weighs as its rarest positive label (repeat-factor style, as
LVIS/Detectron2 sample rare categories); samples with no label form their own class. The draws of epoch ``e``
depend only on ``(seed, e)``, like :class:`~transferlab.data.tensor_loader.EpochShuffleSampler`: a run resumed
at epoch ``k`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Sampler

SamplerKind = Literal["shuffle", "balanced"]
SAMPLERS: tuple[str, ...] = ("shuffle", "balanced")
_STREAM = 7_919  # keeps the balanced draws apart from the shuffle orders of the same (seed, epoch)


def balanced_sample_weights(targets: np.ndarray) -> np.ndarray:
    """One weight per training sample: ``1 / n(class)``, or for multi-label rows ``1 / n(rarest positive label)``.

    Args:
        targets: ``(N,)`` class indices, or ``(N, C)`` 0/1 rows (multi-label).

    Returns:
        ``(N,)`` float64 weights summing to the number of classes present (every class the same total).
    """
    targets = np.asarray(targets)
    if targets.ndim == 1:
        strata = targets.astype(np.int64)
    else:
        positive = targets > 0.5
        counts = positive.sum(axis=0)
        # the rarest positive label of each row; rows without a label get their own stratum (index C)
        rarity = np.where(positive, counts[None, :], np.iinfo(np.int64).max)
        strata = np.where(positive.any(axis=1), rarity.argmin(axis=1), targets.shape[1])
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


class BalancedSampler(Sampler[int]):
    """Weighted draws with replacement whose order depends only on ``(seed, epoch)`` (see the module docstring).

    Args:
        weights: One non-negative weight per sample (:func:`balanced_sample_weights`).
        seed: Seed of the draws.

    Raises:
        ValueError: For no weights, a negative or non-finite weight, or weights that are all zero.
    """

    def __init__(self, weights: np.ndarray, seed: int) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or not len(w) or not np.isfinite(w).all() or (w < 0).any() or not w.any():
            raise ValueError("BalancedSampler needs one finite, non-negative weight per sample, not all zero")
        self.weights = torch.as_tensor(w)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the draws of ``epoch`` (Lightning calls this at every epoch start, also through DDP wrappers)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * _STREAM + 1)
        draws = torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator)
        return iter(draws.tolist())
