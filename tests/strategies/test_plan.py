import math

import pytest

from transferlab.errors import ConfigError
from transferlab.strategies import (
    GroupInfo,
    compile_plan,
    format_plan,
    lr_factor,
    parse_strategy,
    plan_to_dict,
)

GROUPS = [
    GroupInfo("stem", 100, 10),
    GroupInfo("g1", 200, 20),
    GroupInfo("g2", 300, 30),
    GroupInfo("top", 400, 0),
]
HEAD = 50
TOTAL = 1050


def plan_for(stages, **strategy):
    return compile_plan(parse_strategy({"name": "t", "stages": stages, **strategy}), GROUPS, HEAD)


def test_feature_extraction_is_one_step_with_only_the_head():
    plan = plan_for({"probe": {"epochs": 3, "trainable": "head", "lr_head": 0.1, "scheduler": "constant"}})
    assert len(plan.steps) == 1, plan.steps
    step = plan.steps[0]
    assert step.trainable_groups == () and step.trainable_params == HEAD, step
    assert step.total_params == TOTAL, step
    assert step.param_group_lrs == {"head": (0.1, 0.1, 0.1)}, step.param_group_lrs


def test_lp_ft_two_stages_and_global_epochs():
    plan = plan_for(
        {
            "probe": {"epochs": 2, "trainable": "head", "lr_head": 0.01, "scheduler": "constant"},
            "ft": {"epochs": 3, "trainable": "all", "lr_head": 0.001, "scheduler": "constant"},
        }
    )
    assert [s.label for s in plan.steps] == ["probe", "ft"], plan.steps
    assert plan.steps[1].global_first_epoch == 2 and plan.steps[1].first_epoch == 0, plan.steps[1]
    assert plan.steps[1].trainable_params == TOTAL, plan.steps[1]
    assert set(plan.steps[1].param_group_lrs) == {
        "head",
        "backbone.stem",
        "backbone.g1",
        "backbone.g2",
        "backbone.top",
    }
    assert [r[0] for r in plan.epoch_rows()] == [0, 1, 2, 3, 4], "one row per epoch over the run"


def test_gradual_unfreeze_opens_one_group_per_epoch_top_down_with_capped_count():
    plan = plan_for({"u": {"epochs": 5, "trainable": "head", "unfreeze_every": 1, "unfreeze_max": 3}})
    opened = [s.trainable_groups for s in plan.steps]
    assert opened == [(), ("top",), ("g2", "top"), ("g1", "g2", "top")], opened
    assert [s.epochs for s in plan.steps] == [1, 1, 1, 2], "the last open set runs to the end of the stage"
    assert [s.trainable_params for s in plan.steps] == [50, 450, 750, 950], plan.steps
    assert [s.first_epoch for s in plan.steps] == [0, 1, 2, 3], plan.steps


def test_layer_decay_and_schedule_continue_across_unfreeze_steps():
    plan = plan_for(
        {
            "u": {
                "epochs": 4,
                "trainable": "top:1",
                "unfreeze_every": 2,
                "lr_head": 1.0,
                "lr_backbone": 0.5,
                "lr_decay": 0.5,
                "scheduler": "cosine",
            }
        }
    )
    second = plan.steps[1]
    assert second.trainable_groups == ("g2", "top"), second
    for k, epoch in enumerate(range(2, 4)):
        factor = 0.5 * (1 + math.cos(math.pi * epoch / 4))
        assert second.param_group_lrs["head"][k] == pytest.approx(factor), "cosine spans the whole stage"
        assert second.param_group_lrs["backbone.top"][k] == pytest.approx(0.5 * factor), "top group gets lr_backbone"
        assert second.param_group_lrs["backbone.g2"][k] == pytest.approx(0.25 * factor), "one group down: × decay"


def test_bn_frozen_excludes_norm_weights_from_trainable_count():
    plan = plan_for({"f": {"epochs": 1, "trainable": "all", "bn": "frozen"}})
    assert plan.steps[0].trainable_params == TOTAL - 60, plan.steps[0]


def test_patterns_select_groups_and_bad_patterns_fail_with_the_group_list():
    plan = plan_for({"p": {"epochs": 1, "trainable": ["g*"]}})
    assert plan.steps[0].trainable_groups == ("g1", "g2"), plan.steps[0]
    with pytest.raises(ConfigError, match="pattern 'block9' matches no layer group; the groups are stem, g1, g2, top"):
        plan_for({"p": {"epochs": 1, "trainable": ["block9"]}})
    with pytest.raises(ConfigError, match="only 4 layer groups"):
        plan_for({"p": {"epochs": 1, "trainable": "top:5"}})


def test_warmup_then_linear_decay_factors():
    stage = parse_strategy(
        {
            "name": "x",
            "stages": {"a": {"epochs": 5, "warmup_epochs": 1, "scheduler": "linear", "min_lr_ratio": 0.2}},
        }
    ).stages[0]
    got = [lr_factor(stage, e) for e in range(5)]
    assert got == pytest.approx([0.5, 1.0, 0.8, 0.6, 0.4]), got


def test_renderings_show_every_epoch_and_param_group():
    plan = plan_for({"u": {"epochs": 3, "trainable": "head", "unfreeze_every": 1}})
    text = format_plan(plan, "tiny")
    assert "stage 1/1 u: 3 epochs" in text and "step u.step2: epochs 3-3" in text, text
    assert "backbone.g2" in text and "trainable 750 / 1,050" in text, text
    rows = plan_to_dict(plan, "tiny")["epochs"]
    assert [r["trainable_params"] for r in rows] == [50, 450, 750], rows
    assert set(rows[2]["lr"]) == {"head", "backbone.top", "backbone.g2"}, rows[2]
