"""The estimator registry: each row calls its estimator on ScoreInputs; parse_estimators checks names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.ranking import references as R
from tests.ranking.inputs import CASES, case_inputs, probabilities
from transferlab.errors import ConfigError
from transferlab.ranking import ESTIMATORS, Estimator, ScoreInputs, parse_estimators

NAMES = ("logme", "leep", "nce", "hscore", "gbc", "hscore_plain")


def _inputs(**options) -> ScoreInputs:
    f, y = case_inputs(CASES[2])
    theta = torch.tensor(probabilities(np.random.default_rng(2), len(y), 15), dtype=torch.float32)
    return ScoreInputs(features=f, labels=y, source_probabilities=theta, options=options)


REFERENCES = {
    "logme": lambda i: R.logme(i.features, i.labels),
    "leep": lambda i: R.leep(i.source_probabilities, i.labels),
    "nce": lambda i: R.nce(i.source_probabilities, i.labels),
    "hscore": lambda i: R.h_score(i.features, i.labels),
    "gbc": lambda i: R.gbc(
        i.features, i.labels, i.options.get("gbc_dims", 64), i.options.get("gbc_gaussian", "spherical")
    ),
    "hscore_plain": lambda i: R.h_score_plain(i.features, i.labels),
}


def test_the_registry_holds_the_six_estimators_under_their_names():
    assert set(ESTIMATORS) == set(NAMES), f"registered: {sorted(ESTIMATORS)}, expected {sorted(NAMES)}"
    for key, estimator in ESTIMATORS.items():
        assert isinstance(estimator, Estimator), f"{key}: {estimator!r} is not an Estimator"
        assert estimator.name == key, f"row {key!r} is named {estimator.name!r}"
        assert any(str(year) in estimator.title for year in range(2019, 2024)), f"{key}: title {estimator.title!r}"


def test_only_leep_and_nce_need_the_source_and_only_logme_is_multi_label():
    needs = {k for k, e in ESTIMATORS.items() if e.needs_source}
    multi = {k for k, e in ESTIMATORS.items() if e.multi_label}
    assert needs == {"leep", "nce"}, f"needs_source set on {sorted(needs)}"
    assert multi == {"logme"}, f"multi_label set on {sorted(multi)}"


@pytest.mark.parametrize("name", NAMES)
def test_each_row_scores_its_inputs_like_the_reference(name):
    inputs = _inputs()
    got, want = ESTIMATORS[name].score(inputs), REFERENCES[name](inputs)
    assert isinstance(got, float), f"{name} row returns {type(got)}"
    assert math.isclose(got, want, rel_tol=1e-6), f"{name} via the registry: {got!r}, reference={want!r}"


@pytest.mark.parametrize("options", [{"gbc_dims": 4}, {"gbc_gaussian": "diagonal", "gbc_dims": 6}, {"gbc_dims": None}])
def test_gbc_options_reach_the_estimator(options):
    inputs = _inputs(**options)
    got, want = ESTIMATORS["gbc"].score(inputs), REFERENCES["gbc"](inputs)
    assert math.isclose(got, want, rel_tol=1e-9), f"gbc with {options}: {got!r}, reference={want!r}"


def test_gbc_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match=r"gbc_gaussian"):
        ESTIMATORS["gbc"].score(_inputs(gbc_gaussian="full"))
    with pytest.raises(ConfigError, match=r"gbc_dims"):
        ESTIMATORS["gbc"].score(_inputs(gbc_dims=0))


def test_logme_row_scores_multi_hot_targets():
    rng = np.random.default_rng(5)
    targets = torch.tensor((rng.random((40, 3)) < 0.5).astype(np.float64))
    f = torch.tensor(rng.standard_normal((40, 12)))
    got, want = ESTIMATORS["logme"].score(ScoreInputs(f, targets)), R.logme(f, targets)
    assert math.isclose(got, want, rel_tol=1e-6), f"logme row on multi-hot: {got!r}, reference={want!r}"


@pytest.mark.parametrize("name", ["leep", "nce"])
def test_source_estimators_without_probabilities_fail_loudly(name):
    f, y = case_inputs(CASES[0])
    with pytest.raises(ValueError, match=r"source classifier"):
        ESTIMATORS[name].score(ScoreInputs(f, y))


def test_score_inputs_defaults():
    f, y = case_inputs(CASES[0])
    inputs, other = ScoreInputs(f, y), ScoreInputs(f, y)
    assert inputs.source_probabilities is None, "source_probabilities should default to None"
    assert inputs.options == {}, f"options default {inputs.options!r}"
    assert inputs.options is not other.options, "options default is shared between instances"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("logme", ("logme",)),
        (["logme", "leep"], ("logme", "leep")),
        (("gbc", "hscore", "hscore_plain"), ("gbc", "hscore", "hscore_plain")),
        (list(NAMES), NAMES),
    ],
)
def test_parse_estimators_accepts_names(value, expected):
    got = parse_estimators(value)
    assert got == expected, f"parse_estimators({value!r}) = {got!r}, expected {expected!r}"
    assert isinstance(got, tuple), f"parse_estimators returns {type(got)}, not a tuple"


@pytest.mark.parametrize("value", [[], (), None, 3])
def test_parse_estimators_rejects_empty_or_non_lists(value):
    with pytest.raises(ConfigError, match=r"ranking\.estimators.*expected a list of estimators"):
        parse_estimators(value)


@pytest.mark.parametrize("value", [["lgme"], ["logme", "LEEP"], "", "gbc_full"])
def test_parse_estimators_rejects_unknown_names(value):
    with pytest.raises(ConfigError, match=r"unknown estimator.*known: logme, leep"):
        parse_estimators(value)


def test_parse_estimators_rejects_duplicates():
    with pytest.raises(ConfigError, match=r"twice"):
        parse_estimators(["logme", "nce", "logme"])


def test_parse_estimators_names_the_key_it_checks():
    with pytest.raises(ConfigError, match=r"^rank\.estimators"):
        parse_estimators(["nope"], where="rank.estimators")
