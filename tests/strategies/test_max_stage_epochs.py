"""strategy.max_stage_epochs: every stage capped (what debug=fast uses), schedules shrunk to fit."""

from __future__ import annotations

import pytest

from transferlab.errors import ConfigError
from transferlab.strategies.spec import parse_strategy


def _strategy(**stage):
    return {"name": "s", "stages": {"a": {"epochs": 10, **stage}, "b": {"epochs": 1}}}


def test_every_stage_is_capped_and_its_schedule_fits():
    spec = parse_strategy({**_strategy(warmup_epochs=3, unfreeze_every=4), "max_stage_epochs": 2})
    a, b = spec.stages
    assert (a.epochs, a.warmup_epochs, a.unfreeze_every) == (2, 1, 1)
    assert b.epochs == 1 and spec.total_epochs == 3
    one = parse_strategy({**_strategy(warmup_epochs=3, unfreeze_every=4), "max_stage_epochs": 1}).stages[0]
    assert (one.epochs, one.warmup_epochs, one.unfreeze_every) == (1, 0, None)
    assert parse_strategy({**_strategy(), "max_stage_epochs": None}).stages[0].epochs == 10


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True])
def test_a_bad_cap_names_the_key(bad):
    with pytest.raises(ConfigError, match=r"strategy\.max_stage_epochs="):
        parse_strategy({**_strategy(), "max_stage_epochs": bad})
