"""The ``candidates`` grammar of ``transferlab rank``: every entry checked before any feature is computed."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_file

from transferlab.errors import ConfigError
from transferlab.run.candidates import parse_candidate, parse_candidates
from transferlab.run.spec import BackboneChoice

BASE = BackboneChoice("efficientnet_lite0", "package")


@pytest.mark.parametrize(
    ("entry", "name", "weights"),
    [
        ("efficientnet_lite0", "efficientnet_lite0", "package"),  # the conf option's own weights
        ("efficientnet_lite2@null", "efficientnet_lite2", None),
        ("efficientnet_lite1@random", "efficientnet_lite1", None),
        ("small_cnn", "small_cnn", None),
        ("resnet18", "tv:resnet18", "hub"),  # a conf option whose registry name differs
        ("timm:resnet18", "timm:resnet18", None),  # a registry name without a conf file: random init
        ("  small_cnn@null  ", "small_cnn", None),
    ],
)
def test_entries_name_a_backbone_and_weights(entry: str, name: str, weights: str | None) -> None:
    candidate = parse_candidate(entry, 0)
    assert (candidate.backbone.name, candidate.backbone.weights) == (name, weights), candidate
    assert candidate.label == entry.strip()


def test_checkpoint_and_file_weights_resolve_to_paths(tmp_path: Path) -> None:
    file = tmp_path / "w.safetensors"
    save_file({"x": __import__("torch").zeros(1)}, str(file))
    run = tmp_path / "run"
    run.mkdir()
    save_file({"x": __import__("torch").zeros(1)}, str(run / "model.safetensors"))
    assert parse_candidate(f"checkpoint:{run}", 0).backbone == BackboneChoice("checkpoint", str(run))
    assert parse_candidate(f"small_cnn@{file}", 1).backbone == BackboneChoice("small_cnn", str(file))


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("efficientnet_lite9", "Did you mean: efficientnet_lite2"),
        ("checkpoint:/no/such/run", "no such file or directory"),
        ("small_cnn@/no/such.safetensors", "no such file or directory"),
        ("small_cnn@hub", "has no hub weights"),
        ("checkpoint:", "must not be empty"),
        ("", "expected a backbone"),
        (5, "expected a backbone"),
    ],
)
def test_a_bad_entry_names_its_index_and_the_fix(entry: object, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_candidates(["small_cnn", entry], BASE)
    message = str(err.value)
    assert "candidates[1]" in message and says in message and "Fix" in message, message


def test_the_list_itself_is_checked() -> None:
    assert [c.label for c in parse_candidates([], BASE)] == ["efficientnet_lite0@package"]
    assert [c.label for c in parse_candidates(None, BASE)] == ["efficientnet_lite0@package"]
    assert [c.label for c in parse_candidates("small_cnn", BASE)] == ["small_cnn"]
    with pytest.raises(ConfigError, match="expected a list"):
        parse_candidates(7, BASE)
    with pytest.raises(ConfigError, match="same backbone and weights"):
        parse_candidates(["small_cnn", "small_cnn@null"], BASE)


def test_a_candidate_config_is_the_pure_pretrained_backbone() -> None:
    from transferlab.config.compose import compose
    from transferlab.run.spec import parse_config

    config = parse_config(compose(["strategy=lora", "data.image_size=16"]))
    ranked = parse_candidate("small_cnn", 0).config(config)
    assert ranked.backbone == BackboneChoice("small_cnn", None)
    assert ranked.strategy.adapter is None and ranked.strategy.init == "pretrained", ranked.strategy
    assert ranked.resolved["backbone"] == {"name": "small_cnn", "weights": None}
    assert ranked.data == config.data
