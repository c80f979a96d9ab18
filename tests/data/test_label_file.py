"""The label-file data source: formats, single- and multi-label labels, split columns, and every file error."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.clitools import run_cli
from tests.data.conftest import write_images
from transferlab.data import build_data, check_data
from transferlab.data.label_file import LabelFileDataModule
from transferlab.errors import ConfigError, DataError

CLASSES = ("cat", "dog", "eel")


@pytest.fixture
def images(tmp_path: Path) -> dict[str, list[str]]:
    """``tmp_path/img/<class>/img_i.png``, 10 per class: class → paths relative to ``tmp_path``."""
    out = {}
    for color, name in enumerate(CLASSES):
        write_images(tmp_path / "img" / name, 10, color=color)
        out[name] = [f"img/{name}/img_{i}.png" for i in range(10)]
    return out


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",", bom: bool = False) -> Path:
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in rows]
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def single_rows(images: dict[str, list[str]]) -> list[list[str]]:
    return [[p, name] for name, paths in images.items() for p in paths]


def labels_file(tmp_path, images, name: str = "labels.csv", **kw) -> Path:
    return write_csv(tmp_path / name, ["path", "label"], single_rows(images), **kw)


def module(file: Path, data_config, setup: bool = True, **cfg) -> LabelFileDataModule:
    dm = build_data({"name": "label_file", "file": str(file), "num_workers": 0, "batch_size": 8, **cfg}, data_config)
    if setup:
        dm.setup()
    return dm


def counts(ds) -> Counter:
    return Counter(int(ds.base.targets[i]) for i in ds.indices)


def error(exc_type, file: Path, data_config, **cfg) -> str:
    with pytest.raises(exc_type) as err:
        module(file, data_config, **cfg)
    return str(err.value)


# ---- single-label ---------------------------------------------------------------------------------------------
def test_csv_single_label_splits_stratified_and_batches_int64(tmp_path, images, data_config):
    dm = module(labels_file(tmp_path, images), data_config)
    assert dm.class_names == list(CLASSES) and not dm.multi_label, (dm.class_names, dm.multi_label)
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    assert sizes == (18, 6, 6), f"10 per class with val 0.15 / test 0.2 should split 6/2/2 per class, got {sizes}"
    for split in ("train_set", "val_set", "test_set"):
        assert len(set(counts(getattr(dm, split)).values())) == 1, f"{split} not stratified"
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, 16, 16) and y.dtype == torch.int64 and y.shape == (8,), (x.shape, y.dtype, y.shape)
    targets = dm.train_targets()
    assert targets.shape == (18,) and targets.dtype == np.int64, (targets.shape, targets.dtype)
    assert np.bincount(targets).tolist() == [6, 6, 6], np.bincount(targets)
    assert dm.members["test"][0] == str((tmp_path / dm.test_set.base.samples[dm.test_set.indices[0]][0]).resolve())
    assert sum(len(v) for v in dm.members.values()) == 30, "split.json ids of every sample"


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "ndjson"])
def test_tsv_and_json_lines_read_like_csv(tmp_path, images, data_config, fmt):
    csv_dm = module(labels_file(tmp_path, images), data_config)
    file = tmp_path / f"labels.{fmt}"
    if fmt == "tsv":
        write_csv(file, ["path", "label"], single_rows(images), delimiter="\t")
    else:
        file.write_text("\n".join(json.dumps({"path": p, "label": c, "extra": 1}) for p, c in single_rows(images)))
    dm = module(file, data_config)
    assert dm.class_names == csv_dm.class_names and dm.members == csv_dm.members, f"{fmt} differs from csv"


def test_format_key_overrides_the_suffix(tmp_path, images, data_config):
    file = write_csv(tmp_path / "labels.txt", ["path", "label"], single_rows(images), delimiter="\t")
    message = error(DataError, file, data_config)
    assert "labels.txt" in message and "data.format=csv" in message and "'.txt'" in message, message
    assert module(file, data_config, format="tsv").num_classes == 3
    assert "data.format='xls'" in error(ConfigError, file, data_config, format="xls")


def test_bom_blank_lines_spaces_and_numeric_classes(tmp_path, data_config):
    write_images(tmp_path / "i", 12, color=1)
    rows = [[f"i/img_{i}.png", str([2, 10, 1][i % 3])] for i in range(12)]
    file = tmp_path / "labels.csv"
    text = "\ufeffpath, label\n\n" + "\n".join(f"{p}, {c}" for p, c in rows) + "\n\n,\n"
    file.write_text(text, encoding="utf-8")
    dm = module(file, data_config, setup=False)
    assert dm.class_names == ["1", "2", "10"], f"BOM dropped, numeric names sorted as numbers: {dm.class_names}"
    assert len(dm.table.paths) == 12, "blank lines and empty-cell lines are skipped"


def test_root_and_absolute_paths(tmp_path, images, data_config):
    rows = [[p.removeprefix("img/"), c] for p, c in single_rows(images)]
    rows[0][0] = str(tmp_path / "img" / rows[0][0])  # an absolute path is used as it is
    (tmp_path / "elsewhere").mkdir()
    file = write_csv(tmp_path / "elsewhere" / "labels.csv", ["path", "label"], rows)
    dm = module(file, data_config, root=str(tmp_path / "img"))
    assert all(p.is_file() for p in dm.table.paths) and dm.table.paths[0] == tmp_path / "img" / "cat" / "img_0.png"
    message = error(DataError, file, data_config)  # relative to the label file's folder: all but one missing
    assert "29 of 30 image files" in message and "data.root=" in message and "data row 2" in message, message


def test_root_with_a_tilde_is_expanded(tmp_path, images, data_config, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    dm = module(labels_file(tmp_path, images), data_config, setup=False, root="~")
    assert dm.table.root == tmp_path, dm.table.root


def test_split_column_decides_the_splits_and_a_missing_one_is_carved(tmp_path, images, data_config):
    rows = [[p, c, ["train", "train", "train", "train", "valid", "validation", "TEST", "test"][i % 8]]
            for i, (p, c) in enumerate(single_rows(images))]  # fmt: skip
    file = write_csv(tmp_path / "labels.csv", ["path", "label", "split"], rows)
    dm = module(file, data_config, split_column="split")
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    given = Counter(r[2].lower() for r in rows)
    assert sizes == (given["train"], 8, 6), f"the column's splits, not fractions: {sizes} vs {given}"
    no_val = [r for r in rows if r[2].startswith("t") or r[2] == "TEST"]
    dm = module(write_csv(tmp_path / "b.csv", ["path", "label", "split"], no_val), data_config, split_column="split")
    assert len(dm.test_set) == 6 and len(dm.val_set) > 0, "val carved from the train rows"
    assert set(dm.members["val"]) <= {str((tmp_path / r[0]).resolve()) for r in no_val if r[2] == "train"}


def test_shots_and_label_fraction(tmp_path, images, data_config):
    file = labels_file(tmp_path, images)
    dm = module(file, data_config, shots_per_class=2)
    assert sorted(counts(dm.train_set).values()) == [2, 2, 2] and len(dm.test_set) == 6, dm.describe()
    dm = module(file, data_config, label_fraction=0.5)
    assert sorted(counts(dm.train_set).values()) == [3, 3, 3], dm.describe()


def test_validate_catches_a_missing_image_before_setup(tmp_path, images, data_config):
    (tmp_path / images["dog"][3]).unlink()
    cfg = {"name": "label_file", "file": str(labels_file(tmp_path, images))}
    with pytest.raises(DataError) as err:
        check_data(cfg, data_config)
    message = str(err.value)
    assert "1 of 30 image files" in message and "data row 14" in message and "img_3.png" in message, message


def test_on_corrupt_fail_and_skip(tmp_path, images, data_config):
    (tmp_path / images["cat"][0]).write_bytes(b"not a png")
    file = labels_file(tmp_path, images)
    message = error(DataError, file, data_config)
    assert "1 of 30 image files" in message and "img_0.png" in message and "on_corrupt=skip" in message, message
    dm = module(file, data_config, on_corrupt="skip")
    assert sum(len(d) for d in (dm.train_set, dm.val_set, dm.test_set)) == 29 and "1 unreadable file" in dm.describe()


# ---- multi-label ----------------------------------------------------------------------------------------------
def multi_rows(images) -> list[list[str]]:
    """Tags per image: everyone 'pet', dogs also 'loud', every 5th image also 'rare', img_9 of eels none."""
    rows = []
    for name, paths in images.items():
        for i, p in enumerate(paths):
            tags = ["pet"] + (["loud"] if name == "dog" else []) + (["rare"] if i % 5 == 0 else [])
            rows.append([p, "" if (name == "eel" and i == 9) else "|".join(tags)])
    return rows


def test_delimited_labels_are_multi_hot_float32(tmp_path, images, data_config):
    file = write_csv(tmp_path / "tags.csv", ["path", "tags"], multi_rows(images))
    dm = module(file, data_config, label_column="tags", label_delimiter="|")
    assert dm.multi_label and dm.class_names == ["loud", "pet", "rare"], (dm.multi_label, dm.class_names)
    _, y = next(iter(dm.train_dataloader()))
    assert y.dtype == torch.float32 and y.shape == (8, 3) and set(y.unique().tolist()) <= {0.0, 1.0}, y
    targets = dm.train_targets()
    assert targets.shape == (len(dm.train_set), 3) and set(np.unique(targets)) <= {0, 1}, targets.shape
    line = dm.describe()
    assert "multi-label, 3 labels (loud, pet, rare), 1.5 labels/image, 1 images with no label, train" in line, line


def test_rare_labels_reach_every_split(tmp_path, images, data_config):
    file = write_csv(tmp_path / "tags.csv", ["path", "tags"], multi_rows(images))
    dm = module(file, data_config, label_column="tags", label_delimiter="|")
    rare = dm.class_names.index("rare")
    for split in ("train_set", "val_set", "test_set"):
        ds = getattr(dm, split)
        assert ds.base.targets[ds.indices, rare].sum() >= 1, f"'rare' (6 images) missing from {split}"


def test_label_fraction_subsamples_by_rarest_label_and_shots_are_refused(tmp_path, images, data_config):
    file = write_csv(tmp_path / "tags.csv", ["path", "tags"], multi_rows(images))
    cfg = {"label_column": "tags", "label_delimiter": "|"}
    full = module(file, data_config, **cfg)
    half = module(file, data_config, label_fraction=0.5, **cfg)
    assert len(half.train_set) < len(full.train_set) and set(half.members["train"]) < set(full.members["train"])
    assert half.members["test"] == full.members["test"], "subsampling must not touch the test split"
    rare = half.class_names.index("rare")
    assert half.train_targets()[:, rare].sum() >= 1, "the rare stratum keeps at least one image"
    message = error(ConfigError, file, data_config, shots_per_class=2, **cfg)
    assert "data.shots_per_class=2" in message and "multi-label" in message and "label_fraction" in message, message


def test_indicator_columns_are_multi_label_in_column_order(tmp_path, images, data_config):
    rows = [[p, "1" if c == "dog" else "0", "yes", "TRUE" if i % 4 == 0 else "false"]
            for i, (p, c) in enumerate(single_rows(images))]  # fmt: skip
    file = write_csv(tmp_path / "ind.csv", ["path", "loud", "pet", "rare"], rows)
    dm = module(file, data_config, label_column=["pet", "loud", "rare"])
    assert dm.multi_label and dm.class_names == ["pet", "loud", "rare"], dm.class_names
    assert dm.table.targets.sum(axis=0).tolist() == [30, 10, 8], dm.table.targets.sum(axis=0)
    rows[4][2] = "maybe"
    message = error(DataError, write_csv(file, ["path", "loud", "pet", "rare"], rows), data_config,
                    label_column=["pet", "loud", "rare"])  # fmt: skip
    assert "data row 5 (line 6), column 'pet'" in message and "'maybe'" in message and "0/1" in message, message
    message = error(ConfigError, file, data_config, label_column=["pet", "loud"], classes=["a", "b"])
    assert "data.classes" in message and "indicator" in message, message


def test_json_lines_lists_are_multi_label(tmp_path, images, data_config):
    lines = [{"path": p, "label": [c, "animal"] if i % 2 else c} for i, (p, c) in enumerate(single_rows(images))]
    lines[3]["label"] = []  # an image with no positive label
    file = tmp_path / "labels.jsonl"
    file.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    dm = module(file, data_config)
    assert dm.multi_label and dm.class_names == ["animal", "cat", "dog", "eel"], dm.class_names
    assert dm.table.targets[0].tolist() == [0, 1, 0, 0] and dm.table.targets[1].tolist() == [1, 1, 0, 0]
    assert dm.table.targets[3].sum() == 0


# ---- duplicates -----------------------------------------------------------------------------------------------
def test_identical_duplicates_are_dropped_with_a_warning(tmp_path, images, data_config, caplog):
    rows = single_rows(images)
    rows += [["./" + rows[0][0], rows[0][1]], rows[5]]
    with caplog.at_level("WARNING", logger="transferlab.data.label_table"):
        dm = module(write_csv(tmp_path / "labels.csv", ["path", "label"], rows), data_config, setup=False)
    assert len(dm.table.paths) == 30 and dm.table.duplicates == 2, dm.table.duplicates
    assert "dropped 2 rows" in caplog.text, caplog.text


def test_conflicting_duplicates_name_both_rows(tmp_path, images, data_config):
    rows = [*single_rows(images), [images["cat"][2], "dog"]]
    message = error(DataError, write_csv(tmp_path / "labels.csv", ["path", "label"], rows), data_config)
    assert "listed twice with different labels" in message, message
    assert "data row 3 (line 4)" in message and "data row 31 (line 32)" in message, message


# ---- errors in the file -----------------------------------------------------------------------------------------
def test_missing_folder_empty_and_header_only_files(tmp_path, data_config):
    message = error(DataError, tmp_path / "nope.csv", data_config)
    assert message.startswith(f"data.file={tmp_path / 'nope.csv'}: file not found"), message
    (tmp_path / "dir.csv").mkdir()
    assert "is a folder" in error(DataError, tmp_path / "dir.csv", data_config)
    (tmp_path / "empty.csv").write_text("\n\n")
    assert "the file is empty" in error(DataError, tmp_path / "empty.csv", data_config)
    (tmp_path / "empty.jsonl").write_text("")
    assert "the file is empty" in error(DataError, tmp_path / "empty.jsonl", data_config)
    (tmp_path / "header.csv").write_text("path,label\n")
    assert "no data rows" in error(DataError, tmp_path / "header.csv", data_config)
    assert "data.file is required" in error(ConfigError, Path("???"), data_config)


def test_absent_columns_list_the_columns_and_suggest(tmp_path, images, data_config):
    file = write_csv(tmp_path / "labels.csv", ["filename", "labels"], single_rows(images))
    message = error(DataError, file, data_config)
    assert message.startswith("data.path_column='path':") and "'filename', 'labels'" in message, message
    message = error(DataError, file, data_config, path_column="filename")
    assert message.startswith("data.label_column='label':") and "did you mean 'labels'" in message, message
    message = error(DataError, file, data_config, path_column="filename", label_column="labels", split_column="fold")
    assert message.startswith("data.split_column='fold':"), message


def test_a_file_without_header_says_so(tmp_path, images, data_config):
    file = tmp_path / "labels.csv"
    file.write_text("\n".join(",".join(r) for r in single_rows(images)))
    message = error(DataError, file, data_config)
    assert "looks like a data row, not a header" in message and "path,label" in message, message


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("path", "data row 4 (line 5), column 'path': value '' is not an image path"),
        ("label", "data row 4 (line 5), column 'label': the label is empty"),
    ],
)
def test_empty_path_or_label_cell_names_row_and_column(tmp_path, images, data_config, cell, expected):
    rows = single_rows(images)
    rows[3][0 if cell == "path" else 1] = ""
    message = error(DataError, write_csv(tmp_path / "labels.csv", ["path", "label"], rows), data_config)
    assert expected in message and "Fix:" in message, message


def test_unknown_split_value_lists_accepted_values(tmp_path, images, data_config):
    rows = [[p, c, "train"] for p, c in single_rows(images)]
    rows[6][2] = "holdout"
    file = write_csv(tmp_path / "labels.csv", ["path", "label", "split"], rows)
    message = error(DataError, file, data_config, split_column="split")
    assert "data row 7 (line 8), column 'split': split 'holdout'" in message and "valid, validation" in message


def test_label_outside_classes(tmp_path, images, data_config):
    file = labels_file(tmp_path, images)
    message = error(DataError, file, data_config, classes=["cat", "dog", "eal"])
    assert message.startswith("data.classes=") and "label 'eel' is not one of data.classes" in message, message
    assert "did you mean 'eal'" in message and "10 rows" in message and "data row 21" in message, message
    dm = module(file, data_config, setup=False, classes=["eel", "dog", "cat"])
    assert dm.class_names == ["eel", "dog", "cat"] and dm.table.targets[0] == 2, "label index = position in classes"
    assert "data.classes=[]" in error(ConfigError, file, data_config, classes=[])


def test_json_lines_errors_name_the_line(tmp_path, data_config):
    file = tmp_path / "labels.jsonl"
    file.write_text('{"path": "a.png", "label": "x"}\n\n["b.png", "y"]\n')
    message = error(DataError, file, data_config)
    assert "line 3 is a JSON list" in message and "not an object" in message, message
    file.write_text('{"path": "a.png", "label": "x"}\n{"path": "b.png", label: 1}\n')
    message = error(DataError, file, data_config)
    assert "line 2 is not valid JSON" in message, message


def test_ragged_csv_row_and_broken_quote(tmp_path, images, data_config):
    rows = single_rows(images)
    rows[2] = [rows[2][0], "cat", "extra"]
    message = error(DataError, write_csv(tmp_path / "labels.csv", ["path", "label"], rows), data_config)
    assert "data row 3 (line 4) has 3 cells, the header has 2" in message and "quote" in message, message
    (tmp_path / "q.csv").write_text('path,label\na.png,"cat\n')
    assert "is not valid CSV" in error(DataError, tmp_path / "q.csv", data_config)


def test_non_utf8_file(tmp_path, data_config):
    (tmp_path / "labels.csv").write_bytes("path,label\nä.png,Käse\n".encode("latin-1"))
    message = error(DataError, tmp_path / "labels.csv", data_config)
    assert "is not UTF-8 text" in message and "Fix: save it as UTF-8" in message, message


def test_a_class_too_small_for_the_fractions(tmp_path, images, data_config):
    rows = single_rows(images)[:-8]  # eel keeps 2 images: not enough for train, val and test
    message = error(DataError, write_csv(tmp_path / "labels.csv", ["path", "label"], rows), data_config)
    assert "class 'eel' has 2 images" in message and "needs 3" in message and "data.split_column" in message, message
    rows = [[p, c, "test" if c == "eel" else "train"] for p, c in single_rows(images)]  # eel: no training row
    file = write_csv(tmp_path / "split.csv", ["path", "label", "split"], rows)
    message = error(DataError, file, data_config, split_column="split")
    assert "class 'eel' has 0 train rows" in message and "reaches train and val" in message, message


@pytest.mark.parametrize(
    ("key", "value"),
    [("label_delimiter", "||"), ("label_delimiter", ""), ("label_column", []), ("label_column", [1, 2])],
)
def test_bad_column_settings_are_config_errors(tmp_path, images, data_config, key, value):
    message = error(ConfigError, labels_file(tmp_path, images), data_config, **{key: value})
    assert message.startswith(f"data.{key}=") and "Fix:" in message, message


# ---- end to end -------------------------------------------------------------------------------------------------
@pytest.mark.slow  # real subprocesses: in .ci/run's slow phase (the README suite stays under 15 min)
def test_cli_trains_on_a_single_label_file(tmp_path, images):
    file = labels_file(tmp_path, images)
    run_dir = tmp_path / "run"
    run_cli(
        "train",
        "backbone=small_cnn",
        "data=label_file",
        f"data.file={file}",
        "strategy=finetune",
        "strategy.stages.finetune.epochs=2",
        "debug=fast",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        env={"TRANSFERLAB_OUTPUT_ROOT": str(tmp_path / "outputs")},
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["final"]["test/acc"] <= 1.0, metrics["final"]
    split = json.loads((run_dir / "split.json").read_text())
    assert split["data"] == "label_file" and sum(split["counts"].values()) == 30, split["counts"]
