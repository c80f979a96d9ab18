"""Ranking candidates: the run's assembly, the feature cache, the estimators, and what stops a ranking."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from transferlab.backbones.registry import create_backbone
from transferlab.config.compose import compose
from transferlab.errors import ConfigError, DataError
from transferlab.run.candidates import parse_candidate
from transferlab.run.feature_cache import FeatureCache
from transferlab.run.rank import check_data, parse_ranking, rank_candidate, rank_candidates, without_augmentation
from transferlab.run.spec import parse_config

FAST = ["data.image_size=16", "data.shots_per_class=4", "logger=none"]
OPTIONS = parse_ranking({"estimators": ["logme", "leep", "nce", "hscore", "gbc"]})


def _config(tmp_path: Path, *overrides: str):
    return parse_config(compose([*FAST, f"paths.output_root={tmp_path}", *overrides]))


def test_a_candidate_is_scored_on_the_training_split_and_cached(tmp_path: Path) -> None:
    config = _config(tmp_path)
    cache = FeatureCache(tmp_path / "cache")
    row = rank_candidate(config, parse_candidate("small_cnn", 0), OPTIONS, cache, torch.device("cpu"))
    assert row.error is None, row.error
    assert (row.samples, row.width, row.architecture) == (40, 256, "small_cnn"), row
    assert set(row.scores) == set(OPTIONS.estimators)
    assert row.scores["leep"] is None and "random init" in row.skipped["leep"], row.skipped
    assert all(isinstance(row.scores[e], float) for e in ("logme", "hscore", "gbc")), row.scores
    assert row.cache.startswith("computed") and len(list((tmp_path / "cache").glob("*.safetensors"))) == 1
    again = rank_candidate(
        config, parse_candidate("small_cnn", 0), OPTIONS, FeatureCache(tmp_path / "cache"), torch.device("cpu")
    )
    assert again.cache.startswith("disk") and again.scores == row.scores, (again.cache, again.scores)


def test_random_inits_follow_the_seed_as_in_train(tmp_path: Path) -> None:
    cache = FeatureCache(None)
    rows = [
        rank_candidate(
            _config(tmp_path, f"seed={s}"), parse_candidate("small_cnn", 0), OPTIONS, cache, torch.device("cpu")
        )
        for s in (0, 0, 1)
    ]
    assert rows[0].scores == rows[1].scores and rows[0].scores != rows[2].scores


def test_a_candidate_that_cannot_be_built_or_featurised_is_a_row_with_its_error(tmp_path: Path) -> None:
    broken = create_backbone("small_cnn")
    state = {k: v.clone() for k, v in broken.state_dict().items()}
    first = next(k for k in state if k.endswith("weight"))
    state[first].fill_(float("nan"))
    nan_file = tmp_path / "nan.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(nan_file))
    rows = rank_candidates(
        _config(tmp_path),
        [
            parse_candidate(f"efficientnet_lite0@{nan_file}", 0),
            parse_candidate(f"small_cnn@{nan_file}", 1),
            parse_candidate("small_cnn", 2),
        ],
        OPTIONS,
        torch.device("cpu"),
        progress=lambda line: None,
    )
    assert rows[0].error and "could not be built" in rows[0].error and "WeightsError" in rows[0].error, rows[0].error
    assert rows[1].error and "features could not be computed" in rows[1].error and "NaN" in rows[1].error, rows[1]
    assert rows[2].error is None and rows[2].scores["logme"] is not None


def test_augmentation_is_switched_off_with_the_conf_files_off_values(tmp_path: Path) -> None:
    config = _config(
        tmp_path, "data.augment.hflip=true", "data.augment.rotate=10", "data.augment.random_resized_crop=0.8"
    )
    off, changed = without_augmentation(config)
    assert changed and off.data["augment"] == _config(tmp_path).data["augment"], off.data["augment"]
    assert off.resolved["data"] == off.data
    same, unchanged = without_augmentation(_config(tmp_path))
    assert not unchanged and same.data == _config(tmp_path).data


def test_single_class_and_multitask_data_stop_the_ranking(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"1 class\(es\).*at least 2.*Fix"):
        rank_candidate(
            _config(tmp_path, "data.classes=[3]"), parse_candidate("small_cnn", 0), OPTIONS, FeatureCache(None),
            torch.device("cpu"),
        )  # fmt: skip
    config = parse_config(compose(["data=multitask_digits", "logger=none"]))
    with pytest.raises(ConfigError, match="one task at a time"):
        check_data(config, object())


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"estimators": []}, "expected a list of estimators"),
        ({"estimators": ["logme", "logme"]}, "twice"),
        ({"estimators": ["leap"]}, "unknown estimator 'leap'"),
        ({"gbc_dims": 0}, "ranking.gbc_dims=0"),
        ({"gbc_dims": True}, "ranking.gbc_dims=True"),
        ({"gbc_dims": "x"}, "ranking.gbc_dims='x'"),
        ({"gbc_gaussian": "full"}, "ranking.gbc_gaussian='full'"),
        ({"runs": 5}, "ranking.runs=5"),
        ({"out": ["a"]}, "ranking.out=['a']"),
        ({"estimatorz": ["logme"]}, "estimatorz"),
    ],
)
def test_every_ranking_key_refuses_a_bad_value(raw: dict, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_ranking(raw)
    assert says in str(err.value), str(err.value)
