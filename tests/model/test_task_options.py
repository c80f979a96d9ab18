"""The ``task`` group: every key typed, every bad value one clear error naming ``task.<key>``."""

from __future__ import annotations

import pytest

from transferlab.errors import ConfigError
from transferlab.model.tasks.options import TaskOptions, parse_task


def test_defaults_and_absent_group():
    assert parse_task(None) == TaskOptions() == parse_task({})
    options = parse_task({"loss": "focal", "class_weights": [1, 2], "label_smoothing": 0.1, "focal_gamma": 1})
    assert options.class_weights == (1.0, 2.0) and options.loss == "focal" and options.focal_gamma == 1.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"loss": "hinge"}, r"task.loss='hinge': choose one of auto, cross_entropy, bce, focal"),
        ({"class_weights": "balanced"}, r"task.class_weights='balanced': expected null, auto or a non-empty list"),
        ({"class_weights": []}, r"task.class_weights=\[\]: expected null, auto or a non-empty list"),
        ({"class_weights": [1, -1]}, r"task.class_weights=\[1, -1\]: -1 is not a finite number ≥ 0"),
        ({"class_weights": [1, float("nan")]}, r"nan is not a finite number"),
        ({"class_weights": [0, 0]}, r"every weight is 0"),
        ({"pos_weight": [True]}, r"task.pos_weight=\[True\]: True is not a finite number"),
        ({"label_smoothing": 1.0}, r"task.label_smoothing=1.0: must be below 1"),
        ({"label_smoothing": -0.1}, r"task.label_smoothing=-0.1: must be in \[0.0, 1.0\]"),
        ({"focal_gamma": 11}, r"task.focal_gamma=11.0: must be in \[0.0, 10.0\]"),
        ({"threshold": "best"}, r"task.threshold='best': choose one of per_label, global"),
        ({"treshold": "global"}, r"task.treshold: unknown key; did you mean 'threshold'"),
        ("focal", r"task='focal': expected a group of keys"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_task(raw)
    assert "Fix:" in str(info.value) or "valid keys" in str(info.value)
