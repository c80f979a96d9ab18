import pytest

from transferlab.errors import ConfigError
from transferlab.strategies import parse_strategy


def _strategy(**stage):
    return {"name": "s", "stages": {"a": {"epochs": 3, **stage}}}


def test_defaults_fill_unset_keys():
    spec = parse_strategy(_strategy(trainable="head"))
    stage = spec.stages[0]
    assert stage.name == "a" and stage.epochs == 3, stage
    assert stage.trainable == "head" and stage.backbone_lr == stage.lr_head, stage
    assert spec.init == "pretrained", spec


def test_stage_order_is_kept_and_null_stage_is_dropped():
    raw = {"name": "x", "stages": {"probe": {"epochs": 1}, "mid": None, "ft": {"epochs": 2}}}
    assert [s.name for s in parse_strategy(raw).stages] == ["probe", "ft"], "order kept, null stage dropped"


@pytest.mark.parametrize(
    ("stage", "needle"),
    [
        ({"epoch": 3}, "strategy.stages.a.epoch: unknown key; did you mean 'epochs'?"),
        ({"lr_head": 0.0}, "strategy.stages.a.lr_head=0.0: must be > 0.0"),
        ({"lr_head": -1e-3}, "lr_head"),
        ({"epochs": 0}, "strategy.stages.a.epochs=0: must be ≥ 1"),
        ({"epochs": 2.5}, "expected an integer"),
        ({"bn": "running"}, "strategy.stages.a.bn='running': choose one of train, eval, frozen"),
        ({"optimizer": "lamb"}, "choose one of adamw, adam, sgd"),
        ({"unfreeze_every": 3}, "no unfreeze step fits in 3 epochs"),
        ({"warmup_epochs": 3}, "warm-up must be shorter than the stage"),
        ({"trainable": 5}, "expected 'head', 'all', 'new', 'top:K'"),
        ({"trainable": "top:x"}, "'top:K' needs an integer K"),
        ({"lr_decay": 1.5}, "layer decay must be in (0, 1]"),
        ({"lr_head": "fast"}, "expected a number"),
    ],
)
def test_bad_stage_values_name_key_value_and_fix(stage, needle):
    with pytest.raises(ConfigError) as err:
        parse_strategy(_strategy(**stage))
    assert needle in str(err.value), f"message {err.value!s} should contain {needle!r}"


def test_strategy_level_errors():
    with pytest.raises(ConfigError, match=r"strategy\.stages: expected a mapping"):
        parse_strategy({"name": "x", "stages": []})
    with pytest.raises(ConfigError, match=r"strategy\.init='imagenet'"):
        parse_strategy({"name": "x", "init": "imagenet", "stages": {"a": {"epochs": 1}}})
    with pytest.raises(ConfigError, match=r"strategy\.stage: unknown key; did you mean 'stages'"):
        parse_strategy({"name": "x", "stage": {}})
    with pytest.raises(ConfigError, match="every stage is null"):
        parse_strategy({"name": "x", "stages": {"a": None}})


def test_the_recipe_keys_parse_and_bad_values_name_the_key_and_the_fix():
    from transferlab.strategies.spec import parse_stage

    stage = parse_stage(
        "ft",
        {
            "epochs": 6,
            "patience": 2,
            "mixup": 0.2,
            "cutmix": 1.0,
            "ema_decay": 0.99,
            "lr": "auto",
            "label_smoothing": 0.1,
        },
        "strategy.stages.ft",
    )
    assert stage.lr_auto and stage.mixes and stage.patience == 2 and stage.ema_decay == 0.99
    assert (
        not parse_stage("ft", {"lr": None}, "s").lr_auto
        and not parse_stage("ft", {"mix_prob": 0.0, "mixup": 0.2}, "s").mixes
    )
    bad = {
        "patience": (6, "can never end a stage of 6 epochs"),
        "ema_decay": (1.0, "must be in (0, 1)"),
        "label_smoothing": (1.0, "must be in [0, 1)"),
        "mix_prob": (1.5, "must be in [0, 1]"),
        "mixup": (-0.1, "must be ≥ 0"),
        "lr": ("fast", "expected auto"),
    }
    for key, (value, needle) in bad.items():
        with pytest.raises(ConfigError) as err:
            parse_stage("ft", {"epochs": 6, key: value}, "strategy.stages.ft")
        assert str(err.value).startswith(f"strategy.stages.ft.{key}=") and needle in str(err.value), err.value
        assert "Fix:" in str(err.value)


def test_final_defaults_to_best_and_refuses_other_values():
    from transferlab.strategies.spec import parse_strategy

    stages = {"a": {"epochs": 1}, "b": {"epochs": 1}}
    assert parse_strategy({"stages": stages}).final == "best"
    assert parse_strategy({"stages": stages, "final": "last"}).final == "last"
    with pytest.raises(ConfigError, match=r"strategy.final='worst': choose one of best, last"):
        parse_strategy({"stages": stages, "final": "worst"})
