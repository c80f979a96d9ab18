"""split.json: the run's sample ids per split, and what eval may test a run on."""

from __future__ import annotations

import json

import pytest

from transferlab.rundir.split import check_split, find_run_dir, read_split, run_split_keys, write_split

RUN_DATA = {"name": "digits", "seed": 0, "val_fraction": 0.15, "test_fraction": 0.2, "batch_size": 64, "classes": None}


def test_split_file_round_trips_and_counts(tmp_path):
    members = {"train": ["a", "b", "c"], "val": ["d"], "test": ["e", "f"]}
    path = write_split(tmp_path, "digits", 3, members)
    record = json.loads(path.read_text())
    assert record["counts"] == {"train": 3, "val": 1, "test": 2} and record["seed"] == 3
    saved = read_split(tmp_path)
    assert saved is not None and saved.members["test"] == frozenset({"e", "f"}) and saved.data == "digits"
    assert not list(tmp_path.glob("*.tmp")), "written atomically"
    (tmp_path / "model").mkdir()
    assert find_run_dir(tmp_path / "model" / "x.ckpt") == tmp_path
    assert read_split(tmp_path / "model") is None  # no split.json: an older run


def test_a_broken_split_file_is_a_clear_error(tmp_path):
    (tmp_path / "split.json").write_text('{"format": 1, "members": ')
    with pytest.raises(ValueError, match=r"split.json: not a transferlab split file"):
        read_split(tmp_path)
    (tmp_path / "split.json").write_text('{"format": 99, "members": {}}')
    with pytest.raises(ValueError, match="format 99"):
        read_split(tmp_path)


def test_own_split_other_data_and_overlap_counts(tmp_path):
    write_split(tmp_path, "digits", 0, {"train": ["t1", "t2", "t3"], "val": ["v1"], "test": ["x1", "x2"]})
    saved = read_split(tmp_path)
    assert saved is not None
    own = check_split(saved, ["x2", "x1"])
    assert own.own and own.in_train == 0 and own.label() == "the run's own test split (2 samples)"
    leaky = check_split(saved, ["x1", "t1", "t2", "v1"])
    assert not leaky.own and (leaky.tested, leaky.in_train, leaky.in_val) == (4, 2, 1)
    assert leaky.label() == "other data (4 samples; 2 in the run's training split, 1 in its validation split)"
    fresh = check_split(saved, ["n1"])
    assert not fresh.own and fresh.in_train == fresh.in_val == 0


@pytest.mark.parametrize(
    ("overrides", "restored"),
    [
        ({"seed": 1}, ["seed"]),
        ({"seed": 1, "test_fraction": 0.5, "batch_size": 8}, ["seed", "test_fraction"]),
        ({"shots_per_class": 5}, ["shots_per_class"]),
        ({"batch_size": 8, "image_size": 48}, []),  # neutral keys: nothing to put back
    ],
)
def test_split_keys_of_the_runs_own_data_are_put_back(overrides, restored):
    config, changed = run_split_keys({**RUN_DATA, **overrides}, RUN_DATA)
    assert changed == restored
    for key in ("seed", "val_fraction", "test_fraction"):
        assert config[key] == RUN_DATA[key]
    assert "shots_per_class" not in config  # absent in the run's config: removed again
    if "batch_size" in overrides:
        assert config["batch_size"] == overrides["batch_size"]  # neutral keys keep the eval's value


def test_other_data_keeps_its_own_split_keys():
    other = {**RUN_DATA, "classes": [0, 1], "seed": 1}
    config, changed = run_split_keys(other, RUN_DATA)
    assert changed == [] and config == other
    swapped = {**RUN_DATA, "name": "image_folder", "root": "/photos", "seed": 1}
    assert run_split_keys(swapped, RUN_DATA) == (swapped, [])
