"""The estimators by name: what each needs, what it can score, and one way to call them all.

A new estimator is one module with its function plus one :class:`Estimator` row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from transferlab.errors import ConfigError
from transferlab.ranking.gbc import gbc
from transferlab.ranking.hscore import h_score, h_score_plain
from transferlab.ranking.leep import leep
from transferlab.ranking.logme import logme
from transferlab.ranking.nce import nce


@dataclass(frozen=True)
class ScoreInputs:
    """What an estimator may read.

    Attributes:
        features: ``(n, d)`` frozen features of the target training images.
        labels: ``(n,)`` class indices or ``(n, L)`` multi-hot targets.
        source_probabilities: ``(n, Z)`` softmax of the source classifier, or ``None`` when there is none.
        options: Estimator options (``gbc_dims``, ``gbc_gaussian``).
    """

    features: torch.Tensor
    labels: torch.Tensor
    source_probabilities: torch.Tensor | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimator:
    """One transferability estimator.

    Attributes:
        name: Its key in ``ranking.estimators``.
        title: Paper and year, for tables and help.
        score: ``ScoreInputs → float`` (higher is better).
        needs_source: Reads the source classifier's probabilities (LEEP, NCE).
        multi_label: Can score multi-hot targets.
    """

    name: str
    title: str
    score: Callable[[ScoreInputs], float]
    needs_source: bool = False
    multi_label: bool = False


def _source(inputs: ScoreInputs) -> torch.Tensor:
    if inputs.source_probabilities is None:  # the caller skips these estimators first; this is a safety net
        raise ValueError("this estimator needs the source classifier's probabilities")
    return inputs.source_probabilities


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("logme", "LogME (You et al., ICML 2021)", lambda i: logme(i.features, i.labels), multi_label=True),
        Estimator("leep", "LEEP (Nguyen et al., ICML 2020)", lambda i: leep(_source(i), i.labels), needs_source=True),
        Estimator("nce", "NCE (Tran et al., ICCV 2019)", lambda i: nce(_source(i), i.labels), needs_source=True),
        Estimator(
            "hscore",
            "H-score with Ledoit-Wolf shrinkage (Ibrahim et al., ICLR 2023)",
            lambda i: h_score(i.features, i.labels),
        ),
        Estimator(
            "gbc",
            "GBC (Pándy et al., CVPR 2022)",
            lambda i: gbc(
                i.features, i.labels, i.options.get("gbc_dims", 64), i.options.get("gbc_gaussian", "spherical")
            ),
        ),
        Estimator("hscore_plain", "H-score (Bao et al., ICIP 2019)", lambda i: h_score_plain(i.features, i.labels)),
    )
}


def parse_estimators(value: Any, where: str = "ranking.estimators") -> tuple[str, ...]:
    """The estimator names of ``value`` (a list of names, or one name), checked.

    Raises:
        ConfigError: For an empty list, an unknown or repeated name.
    """
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    known = ", ".join(ESTIMATORS)
    if not names:
        raise ConfigError(f"{where}={value!r}: expected a list of estimators from: {known}. Fix: {where}=[logme,leep].")
    for name in names:
        if name not in ESTIMATORS:
            raise ConfigError(f"{where}: unknown estimator {name!r}; known: {known}. Fix: {where}=[logme,hscore].")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}={names}: names an estimator twice. Fix: list each once.")
    return tuple(str(n) for n in names)
