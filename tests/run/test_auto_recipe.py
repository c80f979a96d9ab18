"""``strategy=auto`` in the assembly (``run/auto_recipe.py``): the inputs it reads from real data, per data kind."""

from __future__ import annotations

import pytest

from transferlab.config.compose import compose
from transferlab.errors import ConfigError
from transferlab.run.assembly import assemble
from transferlab.run.spec import parse_config

SMALL = ["backbone=small_cnn", "backbone.weights=null", "data.image_size=16"]


def _parts(*overrides, load_weights=True):
    return assemble(parse_config(compose(["strategy=auto", *SMALL, *overrides])), load_weights=load_weights)


def test_shots_are_counted_on_the_training_split():
    parts = _parts("data=digits", "data.shots_per_class=3")
    choice = parts.plan.strategy.choice
    assert choice["recipe"] == "probe" and choice["inputs"]["shots"] == 3 and choice["inputs"]["min_shots"] == 3
    assert choice["inputs"]["classes"] == 10 and choice["inputs"]["image_size"] == 16
    assert [s.name for s in parts.plan.strategy.stages] == ["probe"]
    assert parts.plan.strategy.stages[0].head_init == "ridge"


def test_in_the_band_the_quick_probe_runs_on_train_and_val_only():
    parts = _parts("data=digits", "data.shots_per_class=20")
    inputs = parts.plan.strategy.choice["inputs"]
    assert 0.0 <= inputs["probe_acc"] <= 1.0 and inputs["probe_seconds"] >= 0
    assert parts.plan.strategy.choice["recipe"] in ("probe", "lp_ft", "finetune")
    without = _parts("data=digits", "data.shots_per_class=20", load_weights=False)  # plan without weights: no probe
    assert without.plan.strategy.choice["inputs"]["probe_acc"] is None
    assert "no weights loaded" in " ".join(without.plan.strategy.choice["reasons"])


def test_multi_label_data_gets_a_recipe_without_the_single_label_ridge_head():
    parts = _parts("data=synthetic", "data.multi_label=true", "data.num_classes=4", "strategy.auto.recipe=lp_ft")
    strategy = parts.plan.strategy
    assert strategy.choice["recipe"] == "lp_ft" and all(s.head_init is None for s in strategy.stages)
    assert any("single-label" in reason for reason in strategy.choice["reasons"])


def test_multi_task_data_needs_a_pinned_recipe():
    with pytest.raises(ConfigError, match=r"strategy=auto with data=multitask.*Fix: .*strategy.auto.recipe=lp_ft"):
        _parts("data=multitask_digits")
    pinned = _parts("data=multitask_digits", "strategy.auto.recipe=finetune")
    assert pinned.plan.strategy.choice["recipe"] == "finetune"


def test_an_explicit_ridge_head_on_multi_label_data_is_refused_before_training():
    overrides = [
        *SMALL,
        "strategy=lp_ft",
        "data=synthetic",
        "data.multi_label=true",
        "+strategy.stages.probe.head_init=ridge",
    ]
    with pytest.raises(ConfigError, match=r"strategy.stages.probe.head_init=ridge: .*Fix: "):
        assemble(parse_config(compose(overrides)))
