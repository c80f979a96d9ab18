"""The whole config surface: every key of every shipped config option, set to a bad value, ends in a clean error.

How it works (the data and the rules are in ``tests/config/surface.py``, the inputs in ``surface_inputs.py``):

1. **Keys come from the config files.** Each ``conf/<group>/<option>.yaml`` of the groups backbone, data,
   strategy, regularizer, trainer, logger, callbacks and paths is composed (with ``backbone=small_cnn`` unless
   the group is the backbone's) and its resolved node walked: every key, and every group of keys (``data.augment``,
   ``strategy.stages.finetune``) as a key of its own; then the top-level keys of ``conf/train.yaml``. Options that
   need a companion to be valid here get it from what they hold (a weights file exported in a session fixture for
   ``weights: ???``, a tiny image folder for ``data.root``, the CPU for a GPU trainer on a machine without one, a
   small_cnn target for a LoRA adapter). A (key path, default type) pair found in several options is tested once,
   in the first (the keys of different strategy stages count as one path: one parser checks them all); a new key
   in any YAML enters the matrix by itself.
2. **Bad values come from the default's type** (``BY_TYPE``: a wrong type, an out-of-range value, and the empty
   values ``''``, ``[]`` for a non-empty list and ``null`` where the key does not accept it), with small tables for
   what a default cannot say: the type of a ``null`` default, the keys that accept ``null``, a key whose meaning
   needs its own bad value (a fraction gets 1.5), and a category that does not apply (with its reason). A key whose
   type cannot be inferred fails the test until a table gives it.
3. **Each case runs in process** through ``transferlab validate`` (exit 2, stderr ``transferlab: error: …``, a
   problem line that starts with the full key and has a ``Fix:``, no traceback) and, unless it is a data key or a
   value whose check needs the built backbone, through ``transferlab train``, whose preflight must refuse it with
   one such paragraph before Hydra starts: ``hydra.main`` is replaced so that a case that slips through fails at
   once instead of training. Data keys (parsed when the run assembles) are covered by validate and by a few real
   ``transferlab train`` subprocesses.
4. The full matrix is ``slow`` (one test per group). The main suite runs a subset: one option per group, and of
   it the first key that gets all three kinds of bad value, plus one key of each default type.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.clitools import run_cli, stop_before_hydra
from tests.config import surface as S
from tests.config import surface_inputs as inputs
from transferlab.cli.main import main

#: The option of each group that the fast subset walks.
REPRESENTATIVE = {
    "backbone": "small_cnn",
    "data": "digits",
    "strategy": "finetune",
    "regularizer": "l2sp",
    "trainer": "default",
    "logger": "tensorboard",
    "callbacks": "default",
    "paths": "default",
    "task": "focal",  # the default's keys, with loss=focal
}


@pytest.fixture(scope="session")
def needs(tmp_path_factory) -> S.Companions:
    """The companions of the options that need one: a tiny image folder and an exported small_cnn."""
    tmp = tmp_path_factory.mktemp("surface")
    folder, weights = inputs.make_image_folder(tmp / "images"), inputs.export_small_cnn(tmp / "model.safetensors")
    return inputs.companions(folder, weights)


@pytest.fixture(scope="session")
def every_key(needs) -> list[S.Key]:
    return S.walk_surface(needs)


@pytest.fixture(scope="session")
def representative_keys(needs) -> list[S.Key]:
    return S.walk_surface(needs, only=REPRESENTATIVE)


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    """A case that gets past ``transferlab train``'s preflight raises instead of starting Hydra's app."""

    stop_before_hydra(monkeypatch, tmp_path)


def _cases(keys: list[S.Key]) -> tuple[list[S.Case], list[str]]:
    cases, missing = [], []
    for key in keys:
        try:
            cases += S.bad_values(key)[0]
        except LookupError as err:
            missing.append(str(err))
    return cases, missing


def _problems(keys: list[S.Key]) -> list[str]:
    """Every way the cases of ``keys`` (and their options' baselines) fail to end cleanly."""
    cases, found = _cases(keys)
    for baseline in dict.fromkeys(k.baseline for k in keys):  # a case must fail for its key, not its baseline
        outcome = S.run_in_process(main, ["validate", *baseline])
        if outcome.status != 0:
            found.append(f"baseline {' '.join(baseline)} is not valid: {outcome.stderr.strip()[-300:]}")
    for case in cases:
        found.append(S.problem(case, "validate", S.run_in_process(main, ["validate", *case.overrides])))
        if case.checked_before_hydra:
            outcome = S.run_in_process(main, ["train", *case.overrides])
            found.append(S.problem(case, "train", outcome, one_paragraph=True))
    return [p for p in found if p]


def _report(problems: list[str], count: int) -> str:
    return f"{len(problems)} of {count} cases do not end cleanly:\n" + "\n".join(problems)


# ---- the fast subset -----------------------------------------------------------------------------------------
def _subset(keys: list[S.Key]) -> list[S.Key]:
    """Per group the first key that gets all three kinds of bad value (else its first key), and one of each type."""
    chosen: dict[str, S.Key] = {}
    for key in keys:
        if key.group not in {k.group for k in chosen.values()} and "range" not in S.bad_values(key)[1]:
            chosen[key.path] = key
    for key in keys:
        if key.group not in {k.group for k in chosen.values()}:  # a group whose keys have no range (logger)
            chosen[key.path] = key
        if type(key.default) not in {type(k.default) for k in chosen.values()}:
            chosen[key.path] = key
    return list(chosen.values())


def test_a_representative_subset_ends_in_clean_errors(representative_keys, no_training):
    keys = _subset(representative_keys)
    assert {k.group for k in keys} == {*S.GROUPS, ""}, "every group and the top-level keys are represented"
    cases = _cases(keys)[0]
    assert {c.kind for c in cases} == set(S.KINDS), "every kind of bad value is represented"
    problems = _problems(keys)
    assert not problems, _report(problems, len(cases))


def test_the_walk_finds_nested_keys_groups_of_keys_and_top_level_keys(representative_keys):
    paths = {k.path for k in representative_keys}
    for path in (
        "backbone.weights",
        "data.batch_size",
        "data.augment",
        "data.augment.rotate",
        "strategy.stages.finetune",
        "strategy.stages.finetune.lr_head",
        "callbacks.checkpoint.save_top_k",
        "callbacks.extra",
        "feature_cache",
        "feature_cache.dir",
        "seed",
        "tags",
    ):
        assert path in paths, f"{path} missing from the walk"
    assert not {"data", "strategy", "paths", "hydra"} & paths, "a group's root selects an option: not a key"
    assert all(not p.startswith("hydra") for p in paths), "Hydra's own settings are not the run's keys"


def test_a_key_whose_type_cannot_be_inferred_needs_a_rule():
    key = S.Key("data.new_key", "data", "digits", None, ())
    with pytest.raises(LookupError, match=r"data\.new_key.*NULL_DEFAULT_TYPES"):
        S.bad_values(key)
    cases, skipped = S.bad_values(S.Key("export", "", "", True, ()))
    assert [c.value for c in cases] == ["maybe", "''", "null"] and "range" in skipped, (cases, skipped)


# ---- the whole surface ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_every_key_has_a_rule_and_every_table_entry_a_key(every_key):
    missing = _cases(every_key)[1]
    assert not missing, "keys without a bad-value rule:\n" + "\n".join(missing)
    tables = {
        "NULL_DEFAULT_TYPES": S.NULL_DEFAULT_TYPES,
        "NULLABLE": S.NULLABLE,
        "SPECIAL": S.SPECIAL,
        "NEEDS_BACKBONE": S.NEEDS_BACKBONE,
    }
    stale = [
        f"{name}[{pattern!r}]"
        for name, table in tables.items()
        for pattern in table
        if not any(S.lookup({pattern: True}, k.path) for k in every_key)
    ]
    assert not stale, f"table entries that match no shipped key (remove them): {stale}"


@pytest.mark.slow
@pytest.mark.parametrize("group", [*S.GROUPS, ""], ids=[*S.GROUPS, "top_level"])
def test_every_bad_value_ends_in_a_clean_error(group, every_key, no_training):
    keys = [k for k in every_key if k.group == group]
    assert keys, f"no key found for group {group!r}"
    problems = _problems(keys)
    assert not problems, _report(problems, len(_cases(keys)[0]))


# ---- what `transferlab train` refuses when the run assembles, for real ------------------------------------------
SMALL_RUN = ["backbone=small_cnn", "trainer.limit_train_batches=1", "strategy=finetune"]
SMALL_IMAGES = "data.image_size=16"  # (a multi-task data group sets it per task)

#: name → (overrides, the key the one paragraph must start with); data keys and backbone-dependent values.
ASSEMBLY_CASES = {
    "augment_flag_empty": (["data.augment.hflip=''"], "data.augment.hflip"),
    "batch_size_wrong_type": (["data.batch_size=abc"], "data.batch_size"),
    "fraction_out_of_range": (["data.val_fraction=1.5"], "data.val_fraction"),
    "synthetic_sizes_not_a_group": (["data=synthetic", "data.num_samples=3"], "data.num_samples"),
    "task_class_out_of_range": (["data=multitask_digits", "data.tasks.low.classes=[3,11]"], "data.tasks.low.classes"),
    "torchvision_root_empty": (["data=cifar10", "data.root=''"], "data.root"),
    "lora_target_matches_no_module": (
        ["strategy=lora", "strategy.adapter.target_modules=[no_such_module]"],
        "strategy.adapter.target_modules",
    ),
    "trainable_matches_no_group": (
        ["strategy.stages.finetune.trainable=no_such_group"],
        "strategy.stages.finetune.trainable",
    ),
}
FAST_ASSEMBLY_CASE = "augment_flag_empty"


@pytest.fixture(scope="module")
def assembly_outcomes(request, tmp_path_factory) -> dict[str, object]:
    """Run the selected subprocess cases two at a time (each is a whole ``transferlab train``)."""
    tmp = tmp_path_factory.mktemp("assembly")
    here = getattr(request.node, "path", None)
    chosen = [
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "path", None) == here and "name" in getattr(getattr(item, "callspec", None), "params", {})
    ] or list(ASSEMBLY_CASES)
    env = {"TRANSFERLAB_OUTPUT_ROOT": str(tmp / "outputs")}

    def run(name: str) -> object:
        case = ASSEMBLY_CASES[name][0]
        small = [] if "data=multitask_digits" in case else [SMALL_IMAGES]
        overrides = [*SMALL_RUN, *small, *case, f"hydra.run.dir={tmp / name}"]
        return run_cli("train", *overrides, cwd=tmp, check=False, env=env, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(chosen, pool.map(run, chosen), strict=True))


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=() if n == FAST_ASSEMBLY_CASE else pytest.mark.slow) for n in ASSEMBLY_CASES],
)
def test_train_refuses_what_only_the_assembly_can_check(name, assembly_outcomes, tmp_path_factory):
    proc = assembly_outcomes[name]
    key = ASSEMBLY_CASES[name][1]
    assert proc.returncode == 2, f"{name}: exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, f"{name}: a traceback reached the user:\n{proc.stderr}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("transferlab: error: ")]
    assert len(errors) == 1, f"{name}: expected one 'transferlab: error:' paragraph:\n{proc.stderr}"
    assert S.names_key(errors[0], key), f"{name}: the paragraph must start with {key}: {errors[0]}"
    run_dirs = [Path(line.split("=", 1)[1]) for line in proc.args if line.startswith("hydra.run.dir=")]
    assert run_dirs and not (run_dirs[0] / "model.safetensors").exists(), f"{name}: a failed job exported a model"
