"""The plateau rule (``run/stage_rules.py``): it ends a stage at the epoch its patience says, no sooner or later."""

from __future__ import annotations

import pytest

from transferlab.run.stage_rules import plateau_reason


def _rows(values: list[float | None], key: str = "val/acc") -> list[dict]:
    return [{key: v} if v is not None else {} for v in values]


def _stop_epoch(values: list[float | None], patience: int, min_delta: float = 0.0, mode: str = "max") -> int | None:
    """The first epoch (1-based) after which the rule says stop, as the recorder applies it epoch by epoch."""
    key = "val/loss" if mode == "min" else "val/acc"
    for epoch in range(1, len(values) + 1):
        if plateau_reason(_rows(values[:epoch], key), key, mode, patience, min_delta) is not None:
            return epoch
    return None


@pytest.mark.parametrize(
    ("values", "patience", "min_delta", "expected"),
    [
        ([0.5, 0.6, 0.7, 0.8], 1, 0.0, None),  # improving every epoch: never
        ([0.5, 0.6, 0.6, 0.6], 1, 0.0, 3),  # equal is no improvement
        ([0.5, 0.6, 0.6, 0.6, 0.7], 2, 0.0, 4),
        ([0.5, 0.4, 0.55, 0.5, 0.5], 2, 0.0, 5),  # the counter restarts at 0.55
        ([0.5, 0.52, 0.53, 0.54], 2, 0.05, 3),  # +0.02 and +0.03 are below min_delta
        ([0.5, None, float("nan"), 0.4], 2, 0.0, 3),  # no value and NaN do not improve
        ([None, None, None], 1, 0.0, None),  # no validation at all: the rule cannot decide
    ],
)
def test_the_stage_ends_at_the_epoch_its_patience_says(values, patience, min_delta, expected):
    assert _stop_epoch(values, patience, min_delta) == expected


def test_a_loss_monitor_is_minimised_and_the_reason_names_the_best():
    assert _stop_epoch([1.0, 0.8, 0.81, 0.9], 2, mode="min") == 4
    reason = plateau_reason(_rows([1.0, 0.8, 0.81, 0.9], "val/loss"), "val/loss", "min", 2)
    assert reason == "val/loss did not improve by more than 0 for 2 epochs (best 0.8000 at stage epoch 2)"


def test_no_patience_means_no_rule():
    assert plateau_reason(_rows([0.5, 0.1, 0.1, 0.1]), "val/acc", "max", None) is None
