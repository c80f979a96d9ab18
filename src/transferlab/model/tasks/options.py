"""The ``task`` config group, typed: the loss of the head and how multi-label predictions are thresholded.

What is predicted follows from the data (one class per image, several labels per image, several tasks); how
the head learns it is set here, in one place, for every strategy::

    transferlab train task.class_weights=auto                  # normalised inverse class frequency
    transferlab train task=focal task.focal_gamma=1            # focal loss
    transferlab train data=label_file ... task.pos_weight=auto # multi-label: BCE with neg/pos weights

Weights given as ``auto`` are counted on the training split by :func:`~transferlab.model.tasks.losses.
resolve_weights` once the data is set up; lists are checked against the number of classes by the assembly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from transferlab.config.readers import check_keys, read_choice, read_float
from transferlab.errors import ConfigError

WHERE = "task"
LOSSES: tuple[str, ...] = ("auto", "cross_entropy", "bce", "focal")
THRESHOLDS: tuple[str, ...] = ("per_label", "global")
TASK_KEYS: tuple[str, ...] = ("loss", "class_weights", "pos_weight", "label_smoothing", "focal_gamma", "threshold")

Loss = Literal["auto", "cross_entropy", "bce", "focal"]
#: ``None`` (every class weighs 1), ``"auto"`` (counted on the training split) or one weight per class.
Weights = None | Literal["auto"] | tuple[float, ...]


@dataclass(frozen=True)
class TaskOptions:
    """How the task's head learns (see the module docstring).

    Attributes:
        loss: ``auto`` (cross-entropy for one label per image, BCE for multi-label), ``cross_entropy``,
            ``bce`` (multi-label data only) or ``focal`` (focal cross-entropy / focal BCE).
        class_weights: Per-class weights of the training loss: ``None``, ``auto`` or a list.
        pos_weight: Multi-label only: weight of each label's positive term in BCE: ``None``, ``auto``
            (negatives ÷ positives on the training split) or a list.
        label_smoothing: In [0, 1): single-label targets mix ``ε/C`` uniform mass; multi-label targets become
            ``y·(1−ε) + ε/2``.
        focal_gamma: Focusing exponent γ ≥ 0 of the focal loss (0 = no focusing).
        threshold: Multi-label decision thresholds tuned on the validation split: one per label or one global.
    """

    loss: Loss = "auto"
    class_weights: Weights = None
    pos_weight: Weights = None
    label_smoothing: float = 0.0
    focal_gamma: float = 2.0
    threshold: Literal["per_label", "global"] = "per_label"


def _weights(raw: Mapping[str, Any], key: str) -> Weights:
    value = raw.get(key)
    full = f"{WHERE}.{key}"
    if value is None or value == "auto":
        return value
    fix = f"Fix: {full}=auto (normalised inverse frequency), {full}=null (all 1) or {full}=[1.0,5.0,…] (one per class)."
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{full}={value!r}: expected null, auto or a non-empty list of numbers. {fix}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) or item < 0:
            raise ConfigError(f"{full}={list(value)!r}: {item!r} is not a finite number ≥ 0. {fix}")
    if not any(value):
        raise ConfigError(f"{full}={list(value)!r}: every weight is 0, so nothing would be learned. {fix}")
    return tuple(float(v) for v in value)


def parse_task(raw: Mapping[str, Any] | None) -> TaskOptions:
    """Read the plain ``task`` group (absent or ``null``: every default).

    Raises:
        ConfigError: On an unknown key or a bad value, naming ``task.<key>``, the value and the fix.
    """
    if raw is None:
        return TaskOptions()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"task={raw!r}: expected a group of keys ({', '.join(TASK_KEYS)}). Fix: task=default.")
    check_keys(raw, TASK_KEYS, where=WHERE)
    smoothing = float(read_float(raw, "label_smoothing", 0.0, where=WHERE))  # type: ignore[arg-type]
    if smoothing == 1.0:  # all mass uniform: the targets would carry no label at all
        raise ConfigError(
            f"{WHERE}.label_smoothing=1.0: must be below 1 (1 spreads all mass uniformly). "
            f"Fix: {WHERE}.label_smoothing=0.1 (or 0 for none)."
        )
    gamma = float(read_float(raw, "focal_gamma", 2.0, high=10.0, where=WHERE))  # type: ignore[arg-type]
    return TaskOptions(
        loss=read_choice(raw, "loss", "auto", LOSSES, where=WHERE),  # type: ignore[arg-type]
        class_weights=_weights(raw, "class_weights"),
        pos_weight=_weights(raw, "pos_weight"),
        label_smoothing=smoothing,
        focal_gamma=gamma,
        threshold=read_choice(raw, "threshold", "per_label", THRESHOLDS, where=WHERE),  # type: ignore[arg-type]
    )
