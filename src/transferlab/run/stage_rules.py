"""Stage rules driven by the monitored validation metric: the plateau rule that ends a stage early.

A stage with ``patience: P`` ends once ``P`` epochs in a row did not improve the run's monitored metric
(``optimized_metric``) by more than ``min_delta`` — finetuning-scheduler's phase rule and Lightning's
``EarlyStopping`` counting (an epoch without a value, or NaN, does not improve). ``epochs`` is then the most the
stage runs. The rule reads only the stage's rows of the run's history, which every checkpoint holds, so a resumed
run decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def plateau_reason(
    rows: Sequence[dict[str, Any]], monitor: str, mode: str, patience: int | None, min_delta: float = 0.0
) -> str | None:
    """Why the stage ends now by its plateau rule, or ``None`` while it goes on.

    Args:
        rows: The stage's history rows so far (one per epoch, in order), with their validation values.
        monitor: The monitored metric (``val/acc``).
        mode: ``max`` when higher is better, else ``min``.
        patience: Epochs without improvement that end the stage; ``None`` = no rule.
        min_delta: The change that counts as an improvement.

    Example:
        >>> plateau_reason([{"val/acc": 0.5}, {"val/acc": 0.5}, {"val/acc": 0.4}], "val/acc", "max", 2)
        'val/acc did not improve by more than 0 for 2 epochs (best 0.5000 at stage epoch 1)'
    """
    if patience is None:
        return None
    best: float | None = None
    best_at, waited = 0, 0
    for k, row in enumerate(rows, start=1):
        value = row.get(monitor)
        valid = isinstance(value, (int, float)) and not math.isnan(value)
        if valid and (best is None or _improves(float(value), best, mode, min_delta)):
            best, best_at, waited = float(value), k, 0
        else:
            waited += 1
    if best is None or waited < patience:
        return None
    return (
        f"{monitor} did not improve by more than {min_delta:g} for {patience} epochs "
        f"(best {best:.4f} at stage epoch {best_at})"
    )


def _improves(value: float, best: float, mode: str, min_delta: float) -> bool:
    return value > best + min_delta if mode == "max" else value < best - min_delta
