"""Seeded, stratified splits and per-class subsampling (shots or a label fraction).

Every draw is made per class from its own random stream, seeded by ``(seed, purpose, class label)``. So the
test split of a class depends only on the seed, the class's samples and ``test_fraction`` — not on which other
classes are kept, on ``val_fraction`` or on the number of shots — and 5-shot results are measured on the same
test set as 20-shot ones. Shot subsets are nested: the 5 samples of a class are the first 5 of its 20.

Multi-label samples carry several labels; :func:`rarest_label_strata` gives each one stratum (its rarest
positive label), so the same per-class functions split and subsample them and rare labels reach every split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transferlab.errors import ConfigError

_SPLIT_STREAM = 0  # purpose tags of the random streams: the split of a pool and the subsampling of train
_SHOT_STREAM = 1


@dataclass(frozen=True)
class Split:
    """Indices (into the labelled pool) of the three splits; each sorted ascending.

    Attributes:
        train: Training indices.
        val: Validation indices.
        test: Test indices.

    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _rng(seed: int, stream: int, label: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, int(label)])


def _held_count(n: int, fraction: float) -> int:
    """How many of a class's ``n`` samples a ``fraction`` holds out.

    At least one when ``fraction > 0`` and the class has two or more samples, so every class shows up in
    val/test; never all of them, so every class keeps a training sample.
    """
    if fraction <= 0 or n < 2:
        return 0
    k = int(np.floor(n * fraction + 0.5))  # round half up: numpy rounds half to even
    return min(max(k, 1), n - 1)


def rarest_label_strata(targets: np.ndarray) -> np.ndarray:
    """One stratum per multi-label sample: the index of its rarest positive label.

    Stratifying on the rarest label is what keeps rare labels in every split: a frequent label shows up in
    val/test anyway, through the samples that also carry a rarer one. "Rarest" counts positives over the
    samples given; ties go to the lower label index, so the strata are deterministic.

    Args:
        targets: ``(N, C)`` multi-hot labels (any value above 0 is positive).

    Returns:
        ``(N,)`` ``int64`` strata in ``0..C``; ``C`` (one past the last label) is the stratum of the samples
        with no positive label, so they are split like a class of their own.
    """
    positive = np.asarray(targets) > 0
    if positive.ndim != 2:
        raise ValueError(f"targets must be (N, C) multi-hot labels, got shape {positive.shape}")
    n, c = positive.shape
    # Reorder the labels rarest first; a sample's stratum is then its first positive label in that order.
    order = np.argsort(positive.sum(axis=0), kind="stable")
    strata = order[positive[:, order].argmax(axis=1)] if c else np.zeros(n, dtype=np.int64)
    strata[~positive.any(axis=1)] = c
    return strata.astype(np.int64)


def stratified_split(labels: Sequence[int] | np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Split a labelled pool into train/val/test, class by class.

    Each class is shuffled by its own seeded stream; the first ``test_fraction`` of it goes to test, the next
    ``val_fraction`` to val, the rest to train. Fractions are of the whole pool (0.15 and 0.2 → 65/15/20).

    Args:
        labels: Label of every sample of the pool (any integers; the class identity seeds its stream).
        val_fraction: Fraction of each class held out for validation (0 = no validation samples).
        test_fraction: Fraction of each class held out for testing (0 = no test samples).
        seed: Seed of the split.

    Returns:
        The three index sets.

    """
    labels = np.asarray(labels)
    train, val, test = [], [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        perm = idx[_rng(seed, _SPLIT_STREAM, label).permutation(len(idx))]
        n_test = _held_count(len(idx), test_fraction)
        # Val is counted on the whole class but taken after test, so test never depends on val_fraction.
        n_val = min(_held_count(len(idx), val_fraction), len(idx) - n_test - 1) if len(idx) - n_test > 1 else 0
        test.append(perm[:n_test])
        val.append(perm[n_test : n_test + n_val])
        train.append(perm[n_test + n_val :])
    empty = np.empty(0, dtype=np.int64)
    return Split(*(np.sort(np.concatenate(part)) if part else empty for part in (train, val, test)))


def subsample_per_class(
    labels: Sequence[int] | np.ndarray,
    indices: np.ndarray,
    seed: int,
    *,
    shots_per_class: int | None = None,
    label_fraction: float | None = None,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Keep ``shots_per_class`` samples (or ``label_fraction`` of the samples) of each class of ``indices``.

    Args:
        labels: Labels of the whole pool (``indices`` index into it).
        indices: The training indices to subsample.
        seed: Seed of the draw (subsets are nested: fewer shots ⊂ more shots for the same seed).
        shots_per_class: Exact number of samples to keep per class.
        label_fraction: Fraction of each class to keep (at least one sample per class).
        class_names: Names of the labels, for error messages.

    Returns:
        The kept indices, sorted; ``indices`` unchanged when neither option is set.

    Raises:
        ConfigError: when a class has fewer training samples than ``shots_per_class``.

    """
    if shots_per_class is None and label_fraction is None:
        return indices
    labels = np.asarray(labels)
    present, counts = np.unique(labels[indices], return_counts=True)
    if shots_per_class is not None and shots_per_class > counts.min():
        # Name the smallest class, so the suggested value fits every class.
        label, n = present[counts.argmin()], int(counts.min())
        name = class_names[label] if class_names is not None else str(label)
        raise ConfigError(
            f"data.shots_per_class={shots_per_class}: class '{name}' has only {n} training samples after the "
            f"val/test split. Fix: data.shots_per_class={n} or fewer, or lower data.val_fraction/"
            f"data.test_fraction."
        )
    kept = []
    for label in present:
        idx = indices[labels[indices] == label]
        if shots_per_class is not None:
            k = shots_per_class
        else:
            k = max(1, int(np.floor(len(idx) * float(label_fraction) + 0.5)))  # type: ignore[arg-type]
        kept.append(idx[_rng(seed, _SHOT_STREAM, label).permutation(len(idx))[:k]])
    return np.sort(np.concatenate(kept)) if kept else indices[:0]
