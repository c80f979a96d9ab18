"""Random and structured inputs for the estimator tests, all from ``numpy.random.default_rng(seed)``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Case:
    """One random input shape: samples, feature dimensions, classes and how the labels are drawn.

    ``layout``: ``balanced`` (round robin), ``unbalanced`` (geometric class sizes, each class present) or
    ``singleton`` (class 0 has exactly one sample).
    """

    seed: int
    n: int
    d: int
    classes: int
    layout: str = "balanced"

    @property
    def id(self) -> str:
        return f"s{self.seed}-n{self.n}-d{self.d}-c{self.classes}-{self.layout}"


#: n < d and n > d, 2 and many classes, unbalanced classes, a class with a single sample.
CASES = [
    Case(0, 40, 12, 2),
    Case(1, 30, 64, 2),
    Case(2, 90, 20, 9),
    Case(3, 24, 50, 6, "unbalanced"),
    Case(4, 120, 16, 5, "unbalanced"),
    Case(5, 50, 10, 4, "singleton"),
    Case(6, 20, 40, 3, "singleton"),
    Case(7, 60, 60, 12),
]


def labels(rng: np.random.Generator, n: int, classes: int, layout: str = "balanced") -> np.ndarray:
    """``(n,)`` int64 labels ``0..classes-1``, every class present."""
    if layout == "balanced":
        y = np.arange(n) % classes
    elif layout == "unbalanced":
        weights = 0.5 ** np.arange(classes)
        y = rng.choice(classes, size=n, p=weights / weights.sum())
        y[:classes] = np.arange(classes)  # every class present at least once
    elif layout == "singleton":
        y = 1 + np.arange(n - 1) % (classes - 1)
        y = np.concatenate([[0], y])
    else:
        raise ValueError(layout)
    return rng.permutation(y).astype(np.int64)


def features(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Anisotropic Gaussian features with a non-zero mean (so that centring matters)."""
    scales = rng.uniform(0.3, 3.0, size=d)
    return rng.standard_normal((n, d)) * scales + rng.normal(0.0, 2.0, size=d)


def case_inputs(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 feature tensor and int64 label tensor of a :class:`Case`."""
    rng = np.random.default_rng(case.seed)
    y = labels(rng, case.n, case.classes, case.layout)
    f = features(rng, case.n, case.d)
    return torch.tensor(f, dtype=torch.float32), torch.tensor(y)


def clusters(seed: int, n: int, d: int, classes: int, separation: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-separated Gaussian clusters: class means about ``separation`` apart, unit noise per dimension."""
    rng = np.random.default_rng(seed)
    y = labels(rng, n, classes)
    centres = rng.standard_normal((classes, d)) * separation / np.sqrt(2 * d)
    f = centres[y] + rng.standard_normal((n, d))
    return torch.tensor(f, dtype=torch.float64), torch.tensor(y)


def probabilities(rng: np.random.Generator, n: int, source_classes: int, temperature: float = 1.0) -> np.ndarray:
    """``(n, Z)`` softmax rows of Gaussian logits."""
    logits = rng.standard_normal((n, source_classes)) / temperature
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def informative_probabilities(rng: np.random.Generator, y: np.ndarray, source_classes: int, sharp: float = 8.0):
    """Softmax rows peaked on a source class that is a function of the target label (``z = y mod Z`` blocks).

    Several source classes per target class when ``Z`` is larger: target ``t`` owns sources ``t, t + C, …``.
    """
    classes = int(y.max()) + 1
    n = len(y)
    logits = rng.standard_normal((n, source_classes))
    for i in range(n):
        owned = list(range(int(y[i]), source_classes, classes))
        logits[i, owned[rng.integers(len(owned))]] += sharp
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
