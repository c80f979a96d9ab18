"""Reading a label file (CSV, TSV or JSON lines): each row an image path, its label(s), maybe its split.

Three label shapes are read (see ``conf/data/label_file.yaml``):

* one label column holding one class name per row (single-label);
* one label column holding a delimited list (``data.label_delimiter``) or, in JSON lines, a JSON list
  (multi-label; an empty list is an image with no positive label);
* several 0/1 indicator columns (``data.label_column=[a,b,c]``), the class names being the column names.

Every problem is a :class:`~transferlab.errors.DataError` that starts with ``data.file=<file>`` (or the
key whose value does not fit the file) and names the data row (1-based, counted after the header; its line in
the file is given too), the column, the value and the fix — raised while the data module is built.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.data.folders import is_image
from transferlab.data.label_rows import LabelFormat, Row, at, read_rows, show
from transferlab.errors import DataError

log = logging.getLogger(__name__)

#: Accepted values of a split column (case-insensitive) → the split.
SPLIT_VALUES: dict[str, str] = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_TRUE, _FALSE = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}
#: How many rows a message names (the count is always given).
SHOW = 5


@dataclass(frozen=True)
class Columns:
    """Which columns hold what.

    Attributes:
        path: The image path column.
        label: The label column, or a tuple of 0/1 indicator columns (multi-label; class names = column names).
        delimiter: Separator of a label list inside the label column (``None`` = one label per cell).
        split: The train/val/test column (``None`` = no split column).
    """

    path: str = "path"
    label: str | tuple[str, ...] = "label"
    delimiter: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class LabelTable:
    """A label file, read and checked.

    Attributes:
        file: The label file.
        root: The folder relative paths are joined to.
        paths: Image path of every sample.
        rows: Data row of every sample (for messages).
        class_names: Class names; a label's index here is its class index.
        multi_label: Whether samples carry multi-hot labels.
        targets: ``(N,)`` ``int64`` class indices, or ``(N, C)`` ``float32`` 0/1 for multi-label.
        splits: Split of every sample (``train``/``val``/``test``), or ``None`` without a split column.
        duplicates: Rows dropped because they repeat an earlier row's path with the same labels.
    """

    file: Path
    root: Path
    paths: list[Path]
    rows: list[int]
    class_names: list[str]
    multi_label: bool
    targets: np.ndarray
    splits: list[str] | None
    duplicates: int = 0

    def missing_images(self) -> list[int]:
        """Indices of the samples whose image file does not exist (a stat each, nothing decoded)."""
        return [i for i, path in enumerate(self.paths) if not path.is_file()]

    def check_images_exist(self) -> None:
        """Raise when an image file listed in the label file is missing.

        Raises:
            DataError: Naming the first missing files with their rows, and the count.
        """
        missing = self.missing_images()
        if not missing:
            return
        shown = "; ".join(f"data row {self.rows[i]}: {self.paths[i]}" for i in missing[:SHOW])
        shown += "; …" if len(missing) > SHOW else ""
        raise DataError(
            f"data.file={self.file}: {len(missing)} of {len(self.paths)} image files it lists do not exist "
            f"({shown}). Relative paths are joined to data.root={self.root}. Fix: correct the paths in the file, "
            f"point data.root at the folder they are relative to, or drop those rows (data.on_corrupt=skip "
            f"leaves out unreadable files, not missing ones)."
        )


def check_columns(file: Path, header: Sequence[str], rows: Sequence[Row], columns: Columns) -> None:
    """Raise unless every column ``columns`` names is in the file (with a did-you-mean and the columns present).

    Raises:
        DataError: For a missing column, or for a header and no data rows.
    """
    wanted = [("path_column", columns.path)]
    labels = columns.label if isinstance(columns.label, tuple) else (columns.label,)
    wanted += [("label_column", name) for name in labels]
    wanted += [("split_column", columns.split)] if columns.split is not None else []
    present = [c for c in header if c]
    for key, name in wanted:
        if name in header:
            continue
        close = difflib.get_close_matches(name, present, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        headless = " Its first line looks like a data row, not a header." if any(is_image(c) for c in header) else ""
        raise DataError(
            f"data.{key}={name!r}: {file} has no column {name!r} (its columns: {', '.join(map(repr, present))})."
            f"{headless} Fix: {hint}set data.{key} to one of its columns, or add a header line naming them "
            f"(e.g. path,label)."
        )
    if header.count(columns.path) > 1 or any(header.count(n) > 1 for n in labels):
        raise DataError(f"data.file={file}: a column it reads is named twice in the header. Fix: rename one.")
    if not rows:
        raise DataError(f"data.file={file}: has a header but no data rows. Fix: add one row per image.")


def _indicator(file: Path, row: Row, column: str) -> float:
    value = row.cells.get(column)
    text = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    raise DataError(
        f"{at(file, row, column)}: value {show(value)} is not a 0/1 indicator. Fix: write 1 or 0 (true/false and "
        f"yes/no are read too) in every label column."
    )


def _label_names(file: Path, row: Row, column: str, delimiter: str | None) -> str | list[str]:
    """The class name (single-label cell) or the list of names (a delimited cell, a JSON list) of a row."""
    value = row.cells.get(column)
    if isinstance(value, list):
        names = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise DataError(
                    f"{at(file, row, column)}: list item {show(item)} is not a class name. Fix: list class names, "
                    'e.g. ["cat", "dog"].'
                )
            names.append(str(item).strip())
        return [n for n in names if n]
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataError(f"{at(file, row, column)}: value {show(value)} is not a class name. Fix: write a name.")
    text = str(value).strip()
    if delimiter is not None:
        return [part.strip() for part in text.split(delimiter) if part.strip()]
    return text


def _split_of(file: Path, row: Row, column: str) -> str:
    value = row.cells.get(column)
    split = SPLIT_VALUES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if split is None:
        raise DataError(
            f"{at(file, row, column)}: split {show(value)} is not one of train, val (or valid, validation), test. "
            f"Fix: write one of them in every row, or set data.split_column=null to split by data.val_fraction "
            f"and data.test_fraction."
        )
    return split


def _sorted_names(names: set[str]) -> list[str]:
    # Numeric class names sort as numbers (2 before 10), the order a user of 0..N labels expects.
    if names and all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def read_label_table(
    file: Path,
    root: Path | None = None,
    fmt: LabelFormat | None = None,
    columns: Columns | None = None,
    classes: Sequence[str] | None = None,
) -> LabelTable:
    """Read and check a label file (see the module docstring). Image files are not touched.

    Args:
        file: The label file.
        root: Folder the relative paths are joined to (``None`` = the label file's folder).
        fmt: ``csv``, ``tsv`` or ``jsonl`` (``None`` = from the suffix).
        columns: Which columns hold the paths, labels and splits.
        classes: Class names in label-index order (``None`` = the labels found in the file, sorted; the
            indicator columns' order for indicator columns).

    Raises:
        DataError: On any problem with the file (see the module docstring).
    """
    columns = columns or Columns()
    file = Path(file).expanduser()
    root = file.parent if root is None else Path(root).expanduser()
    if not root.is_dir():
        found = "is a file, not a folder" if root.exists() else "folder not found"
        raise DataError(f"data.root={root}: {found}. Fix: point data.root at the folder the paths in {file} are in.")
    header, rows = read_rows(file, fmt)
    check_columns(file, header, rows, columns)
    indicator = isinstance(columns.label, tuple)
    paths: list[Path] = []
    raw: list[Any] = []
    kept: list[Row] = []
    seen: dict[str, int] = {}  # normalised path → index into kept
    splits: list[str] = []
    duplicates = 0
    for row in rows:
        cell = row.cells.get(columns.path)
        if not isinstance(cell, str) or not cell.strip():
            raise DataError(
                f"{at(file, row, columns.path)}: value {show(cell)} is not an image path. Fix: give every row "
                f"the image's path (relative to data.root={root}, or absolute), or drop the row."
            )
        if indicator:
            label: Any = tuple(_indicator(file, row, c) for c in columns.label)
        else:
            label = _label_names(file, row, columns.label, columns.delimiter)  # type: ignore[arg-type]
            label = tuple(sorted(set(label))) if isinstance(label, list) else label
        split = _split_of(file, row, columns.split) if columns.split is not None else ""
        path = Path(cell.strip()).expanduser()
        path = path if path.is_absolute() else root / path
        key = os.path.normcase(os.path.normpath(path))
        if key in seen:
            first = kept[seen[key]]
            if raw[seen[key]] == label and splits[seen[key]] == split:
                duplicates += 1
                continue
            what = "labels" if raw[seen[key]] != label else "splits"
            raise DataError(
                f"data.file={file}: image {cell.strip()!r} is listed twice with different {what}: data row "
                f"{first.number} (line {first.line}) and data row {row.number} (line {row.line}). Fix: keep one "
                f"of the two rows (for several labels per image, list them in one row: data.label_delimiter)."
            )
        seen[key] = len(kept)
        kept.append(row)
        paths.append(path)
        raw.append(label)
        splits.append(split)
    if duplicates:
        log.warning("data.file=%s: dropped %d rows repeating an earlier row's path and labels", file, duplicates)
    multi = indicator or columns.delimiter is not None or any(isinstance(v, tuple) for v in raw)
    if indicator:
        names, targets = list(columns.label), np.asarray(raw, dtype=np.float32)
    else:
        names, targets = _encode(file, kept, raw, columns.label, multi, classes)  # type: ignore[arg-type]
    numbers = [r.number for r in kept]
    return LabelTable(file, root, paths, numbers, names, multi, targets, splits if columns.split else None, duplicates)


def _encode(
    file: Path, rows: list[Row], raw: list[Any], column: str, multi: bool, classes: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    """Class names and targets of named labels (single: ``(N,)`` int64; multi: ``(N, C)`` float32)."""
    if multi:  # a plain string among JSON lists is a list of one
        raw = [v if isinstance(v, tuple) else ((v,) if v else ()) for v in raw]
    else:
        for row, value in zip(rows, raw, strict=True):
            if not value:
                raise DataError(
                    f"{at(file, row, column)}: the label is empty. Fix: give the image its class, drop the row, or "
                    f"set data.label_delimiter (multi-label files allow an image with no label)."
                )
    found = {n for v in raw for n in v} if multi else set(raw)
    names = list(classes) if classes is not None else _sorted_names(found)
    index = {n: i for i, n in enumerate(names)}
    unknown = [(row, v) for row, v in zip(rows, raw, strict=True) if any(n not in index for n in (v if multi else [v]))]
    if unknown:
        row, value = unknown[0]
        name = next(n for n in (value if multi else [value]) if n not in index)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        shown = ", ".join(map(repr, names[:10])) + (", …" if len(names) > 10 else "")
        raise DataError(
            f"data.classes={list(names)!r}: {at(file, row, column)[len('data.file=') :]}: label {name!r} is not one "
            f"of data.classes ({shown}); {len(unknown)} rows have a label outside it. Fix: {hint}add it to "
            f"data.classes, correct the rows, or set data.classes=null to take the classes from the file."
        )
    absent = [n for n in names if n not in found]
    if absent:
        log.warning("data.classes: %d classes have no image in %s: %s", len(absent), file, ", ".join(absent[:SHOW]))
    if not multi:
        return names, np.asarray([index[v] for v in raw], dtype=np.int64)
    targets = np.zeros((len(raw), len(names)), dtype=np.float32)
    for i, value in enumerate(raw):
        targets[i, [index[n] for n in value]] = 1.0
    return names, targets
