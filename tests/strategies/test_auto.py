"""``strategy=auto``'s rule (``strategies/auto.py``): which recipe for which data, why, and its bad values."""

from __future__ import annotations

import dataclasses

import pytest

from transferlab.config.compose import compose
from transferlab.errors import ConfigError
from transferlab.run.spec import parse_config
from transferlab.strategies.auto import AutoInputs, needs_probe
from transferlab.strategies.auto_choice import choose


@pytest.fixture(scope="module")
def auto():
    return parse_config(compose(["strategy=auto"])).strategy


def _inputs(shots, probe=None, classes=10, size=64, pretrain=224):
    return AutoInputs(shots=shots, min_shots=int(shots), classes=classes, image_size=size, pretrain_size=pretrain,
                      probe_acc=probe)  # fmt: skip


def _chance_corrected(score, classes=10):
    return score * (1 - 1 / classes) + 1 / classes


@pytest.mark.parametrize(
    ("shots", "probe", "recipe"),
    [
        (1, None, "probe"),
        (8, None, "probe"),  # few_shots is inclusive
        (50, None, "finetune"),  # many_shots is inclusive
        (500, None, "finetune"),
        (20, None, "lp_ft"),  # in the band without a probe: the middle recipe
        (20, _chance_corrected(0.95), "probe"),
        (20, _chance_corrected(0.9), "probe"),  # probe_good is inclusive
        (20, _chance_corrected(0.6), "lp_ft"),
        (20, _chance_corrected(0.29), "finetune"),
    ],
)
def test_the_rule_chooses_by_shots_then_by_the_quick_probe(auto, shots, probe, recipe):
    chosen = choose(auto, _inputs(shots, probe))
    assert chosen.choice["recipe"] == recipe
    assert chosen.name == "auto" and chosen.auto is None and chosen.recipes is None
    assert [s.name for s in chosen.stages] == [s.name for s in auto.recipes[recipe].stages]
    assert chosen.choice["pin"] == f"strategy.auto.recipe={recipe}"
    assert chosen.choice["reasons"] and all(isinstance(r, str) for r in chosen.choice["reasons"])


def test_the_probe_is_read_only_between_the_shot_bounds(auto):
    assert [needs_probe(auto.auto, _inputs(s)) for s in (5, 8, 9, 30, 49, 50, 100)] == [
        False, False, True, True, True, False, False,
    ]  # fmt: skip
    assert not needs_probe(dataclasses.replace(auto.auto, probe_check=False), _inputs(20))
    assert not needs_probe(dataclasses.replace(auto.auto, recipe="lp_ft"), _inputs(20))


def test_a_pinned_recipe_wins_and_says_so():
    strategy = parse_config(compose(["strategy=auto", "strategy.auto.recipe=finetune"])).strategy
    chosen = choose(strategy, _inputs(2))
    assert chosen.choice["recipe"] == "finetune" and chosen.choice["forced"]
    assert chosen.choice["reasons"][0] == "strategy.auto.recipe=finetune (set by you)"


def test_the_reasons_name_the_inputs_and_the_bounds(auto):
    reasons = choose(auto, _inputs(20, _chance_corrected(0.5))).choice["reasons"]
    text = " ".join(reasons)
    assert "20 training images per class (median over 10 classes)" in text
    assert "few_shots=8" in text and "many_shots=50" in text and "0.50 of the way from chance" in text
    no_probe = AutoInputs(shots=20, classes=10, notes=("no weights loaded",))
    assert "no quick probe (no weights loaded)" in " ".join(choose(auto, no_probe).choice["reasons"])
    unknown = choose(auto, AutoInputs(notes=("no training split read here",)))
    assert unknown.choice["recipe"] == "lp_ft" and "unknown" in unknown.choice["reasons"][0]


def test_inputs_near_the_pretraining_size_give_the_fine_tuning_stages_layer_decay(auto):
    big = choose(auto, _inputs(100, size=224))
    assert [s.lr_decay for s in big.stages] == [0.8]
    assert "lr_decay=0.8" in big.choice["reasons"][-1]
    small = choose(auto, _inputs(100, size=64))
    assert [s.lr_decay for s in small.stages] == [None] and "one rate" in small.choice["reasons"][-1]
    probe = choose(auto, _inputs(3, size=224))  # nothing fine-tunes: no size reason
    assert len(probe.choice["reasons"]) == 1


def test_the_recorded_inputs_are_plain_data(auto):
    inputs = choose(auto, _inputs(20, 0.82, classes=19)).choice["inputs"]
    assert inputs["shots"] == 20 and inputs["classes"] == 19 and inputs["size_ratio"] == round(64 / 224, 4)
    assert inputs["probe_score"] == round((0.82 - 1 / 19) / (1 - 1 / 19), 4)


def test_recipes_keep_the_shared_keys_and_check_their_stages():
    strategy = parse_config(compose(["strategy=auto", "+strategy.max_stage_epochs=1", "strategy.final=last"])).strategy
    for recipe in strategy.recipes.values():
        assert all(s.epochs == 1 for s in recipe.stages) and recipe.final == "last"


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("strategy.auto.recipe=lp", "strategy.auto.recipe='lp'"),
        ("strategy.auto.few_shots=-1", "strategy.auto.few_shots=-1"),
        ("strategy.auto.many_shots=4", "strategy.auto.many_shots=4"),
        ("strategy.auto.probe_good=1.5", "strategy.auto.probe_good=1.5"),
        ("strategy.auto.probe_poor=0.95", "strategy.auto.probe_poor=0.95"),
        ("strategy.auto.probe_check=maybe", "strategy.auto.probe_check='maybe'"),
        ("strategy.auto.full_size=0", "strategy.auto.full_size=0.0"),
        ("strategy.auto.lr_decay=0", "strategy.auto.lr_decay=0.0"),
        ("+strategy.auto.shots=3", "strategy.auto.shots"),
        ("strategy.recipes.lp_ft.stages.finetune.lr_head=-1", "strategy.recipes.lp_ft.stages.finetune.lr_head=-1"),
        ("+strategy.recipes.lp_ft.epochs=3", "strategy.recipes.lp_ft"),
        ("~strategy.recipes.probe", "strategy.recipes="),
        ("+strategy.stages.probe.epochs=3", "strategy.stages"),
        ("strategy.auto=null", "strategy.auto=null"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(override, names):
    with pytest.raises(ConfigError) as err:
        parse_config(compose(["strategy=auto", override]))
    message = str(err.value)
    assert names in message and ("Fix:" in message or "valid keys:" in message), message
