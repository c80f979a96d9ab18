"""The run schema: every top-level key parsed once into a dataclass, with key/value/fix errors."""

from __future__ import annotations

import pytest

from transferlab.config.compose import compose
from transferlab.config.run import GROUP_KEYS, MAX_SEED, parse_run_options
from transferlab.errors import ConfigError
from transferlab.run.spec import resolve


def _raw(*overrides: str) -> dict:
    resolved = resolve(compose(list(overrides)))
    return {k: v for k, v in resolved.items() if k not in GROUP_KEYS}


def test_the_shipped_defaults_parse_to_typed_values():
    options = parse_run_options(_raw())
    assert options.seed == 0 and options.export is True and options.resume is False
    assert options.callbacks.checkpoint.last_min_interval_s == 30.0 and options.callbacks.checkpoint.save_top_k == 1
    assert options.feature_cache.enabled is True and options.tensorboard is True
    assert options.optimized_metric is None  # null: the task's own
    assert options.task_name == "train" and options.tags == ()


@pytest.mark.parametrize(
    ("overrides", "start"),
    [
        (["seed=abc"], "seed='abc': expected an integer"),
        (["seed=-1"], "seed=-1: must be ≥ 0"),
        ([f"seed={MAX_SEED + 1}"], f"seed={MAX_SEED + 1}: must be ≤ {MAX_SEED}"),
        (["export=maybe"], "export='maybe': expected true or false"),
        (["resume=2"], "resume=2: expected true or false"),
        (["task_name=''"], "task_name='': must not be empty"),
        (["task_name=a/b"], "task_name='a/b': names a folder"),
        (["tags=5"], "tags=5: expected a list"),
        (["optimized_metric=acc"], "optimized_metric='acc': expected a metric name"),
        (["+sed=1"], "sed: unknown key; did you mean 'seed'?"),
        (["feature_cache.dir=''"], "feature_cache.dir='': must not be empty"),
        (["callbacks.checkpoint.save_top_k=-2"], "callbacks.checkpoint.save_top_k=-2: must be ≥ -1"),
        (["callbacks.progress_bar.refresh_rate=x"], "callbacks.progress_bar.refresh_rate='x': expected an integer"),
        (["logger.tensorboard=1"], "logger.tensorboard=1: expected true or false"),
        (["+num_classes=0"], "num_classes=0: must be ≥ 1"),
    ],
)
def test_a_bad_run_key_names_the_key_and_the_value(overrides, start):
    with pytest.raises(ConfigError) as info:
        parse_run_options(_raw(*overrides))
    assert str(info.value).startswith(start), str(info.value)
