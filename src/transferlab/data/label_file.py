"""Your own images, labelled by a file: a CSV/TSV or JSON-lines file of image paths and their labels.

Like fastai's ``ImageDataLoaders.from_csv`` (with ``label_delim``) or Hugging Face ``imagefolder`` with a
``metadata.csv``: one row per image, a path column, a label column (one class, or a delimited list), or
several 0/1 label columns (multi-label), and optionally a train/val/test column.

Example:
    >>> cfg = {"name": "label_file", "file": "~/photos/labels.csv", "label_delimiter": "|"}
    >>> dm = build_data(cfg, backbone.data_config)

"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.backbones.base import DataConfig
from transferlab.config import readers
from transferlab.data.file_data import FILE_KEYS, FileDataModule, read_file_options
from transferlab.data.image_datasets import ImageFileList, OnCorrupt, find_unreadable
from transferlab.data.label_rows import FORMATS, LabelFormat
from transferlab.data.label_table import SHOW, Columns, LabelTable, read_label_table
from transferlab.data.options import (
    WHERE,
    CommonOptions,
    check_split_fractions,
    read_common,
    read_float,
    read_required_str,
    read_shots,
)
from transferlab.data.registry import register_data
from transferlab.data.splits import rarest_label_strata, stratified_split, subsample_per_class
from transferlab.data.transforms import AugmentSpec, parse_augment
from transferlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FILE_EXAMPLE = "'~/photos/labels.csv'"


def _read_str(cfg: Mapping[str, Any], key: str, default: str | None, example: str) -> str | None:
    return readers.read_str(cfg, key, default, nullable=default is None, example=example, where=WHERE)


def read_format(cfg: Mapping[str, Any]) -> LabelFormat | None:
    """``data.format``: ``null`` (from the file's suffix), ``csv``, ``tsv`` or ``jsonl``.

    Raises:
        ConfigError: On any other value.
    """
    value = cfg.get("format")
    if value is None or value in FORMATS:
        return value
    raise ConfigError(
        f"{WHERE}.format={value!r}: choose one of {', '.join(FORMATS)}, or null to read it from the file's suffix "
        f"(.csv, .tsv, .jsonl/.ndjson). Fix: {WHERE}.format=null."
    )


def read_label_columns(cfg: Mapping[str, Any]) -> str | tuple[str, ...]:
    """``data.label_column``: one column name, or a non-empty list of 0/1 indicator columns (multi-label).

    Raises:
        ConfigError: On anything else (a number, an empty list, a repeated name).
    """
    value = cfg.get("label_column", "label")
    if not isinstance(value, list):
        return _read_str(cfg, "label_column", "label", "label")  # type: ignore[return-value]
    full = f"{WHERE}.label_column"
    if not value or not all(isinstance(v, str) and v.strip() for v in value) or len(set(value)) < len(value):
        raise ConfigError(
            f"{full}={value!r}: expected a column name, or a list of distinct column names (one 0/1 column per "
            f"class). Fix: {full}=label, or {full}=[cat,dog,bird]."
        )
    return tuple(value)


def read_delimiter(cfg: Mapping[str, Any]) -> str | None:
    """``data.label_delimiter``: ``null`` (one label per cell) or one character (``' '``, ``'|'``, ``';'``).

    Raises:
        ConfigError: For anything but ``null`` or a single character.
    """
    value = cfg.get("label_delimiter")
    if value is None or (isinstance(value, str) and len(value) == 1):
        return value
    full = f"{WHERE}.label_delimiter"
    raise ConfigError(
        f"{full}={value!r}: expected one character that separates the labels of a cell (labels are stripped of "
        f"spaces, so '; ' is written ';'), or null for one label per cell. Fix: {full}='|' (or ' ', ';', ',')."
    )


def read_classes(cfg: Mapping[str, Any]) -> list[str] | None:
    """``data.classes``: ``null`` (from the file) or a non-empty list of distinct class names (label order).

    Raises:
        ConfigError: On anything else.
    """
    value = cfg.get("classes")
    if value is None:
        return None
    full = f"{WHERE}.classes"
    names = [str(v).strip() for v in value] if isinstance(value, list) else []
    ok = names and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value) and all(names)
    if not ok or len(set(names)) < len(names):
        raise ConfigError(
            f"{full}={value!r}: expected a list of distinct class names, in label order. Fix: {full}=[cat,dog], or "
            f"{full}=null to take the labels found in the file."
        )
    return names


@register_data
class LabelFileDataModule(FileDataModule):
    """Images listed in a label file, read with PIL; splits from a split column or stratified fractions.

    The label file is read when the module is built (class names come from it); ``check_sources`` and
    ``setup`` check that every listed image exists, and ``setup`` checks their headers like an image folder
    (see :class:`~transferlab.data.image_folder.ImageFolderDataModule`, ``on_corrupt``).

    Splits: rows of a split column's ``val``/``test`` are those splits; a split the column does not provide is
    carved, stratified and seeded, from the ``train`` rows (without a split column, from every row). Multi-label
    samples are stratified on their rarest label (:func:`~transferlab.data.splits.rarest_label_strata`).

    Args:
        file: The label file.
        data_config: Backbone preprocessing (mean/std, interpolation, crop_pct, channels).
        options: Common options.
        augment: Training augmentation.
        root: Folder the relative paths are joined to (``None`` = the label file's folder).
        fmt: ``csv``, ``tsv`` or ``jsonl`` (``None`` = from the suffix).
        columns: Which columns hold the paths, labels and splits.
        classes: Class names in label order (``None`` = from the file).
        shots_per_class: Keep this many training samples per class (single-label only).
        label_fraction: Keep this fraction of each class's (stratum's) training samples.
        val_fraction: Fraction carved for validation when the split column has no ``val`` row.
        test_fraction: Fraction carved for testing when the split column has no ``test`` row.
        on_corrupt: ``fail`` or ``skip`` unreadable image files.
        file_options: The other options every file source shares (:func:`~transferlab.data.file_data.
            read_file_options`), passed to :class:`~transferlab.data.file_data.FileDataModule` as they are.

    Raises:
        DataError: On a problem with the label file.
        ConfigError: On bad fractions, or settings that do not fit the file.
    """

    name = "label_file"
    KEYS = (
        "file",
        "format",
        "root",
        "path_column",
        "label_column",
        "label_delimiter",
        "split_column",
        "classes",
        "shots_per_class",
        "label_fraction",
        "val_fraction",
        "test_fraction",
        *FILE_KEYS,
    )

    def __init__(
        self,
        file: str | Path,
        data_config: DataConfig,
        options: CommonOptions,
        augment: AugmentSpec | None = None,
        *,
        root: str | Path | None = None,
        fmt: LabelFormat | None = None,
        columns: Columns | None = None,
        classes: Sequence[str] | None = None,
        shots_per_class: int | None = None,
        label_fraction: float | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        on_corrupt: OnCorrupt = "fail",
        **file_options: Any,
    ) -> None:
        columns = columns or Columns()
        if isinstance(columns.label, tuple) and (columns.delimiter is not None or classes is not None):
            key = "label_delimiter" if columns.delimiter is not None else "classes"
            raise ConfigError(
                f"{WHERE}.{key}: data.label_column lists 0/1 indicator columns, whose names are the classes; a "
                f"delimiter or a class list does not apply. Fix: {WHERE}.{key}=null."
            )
        if shots_per_class is not None and label_fraction is not None:
            raise ConfigError("data.shots_per_class and data.label_fraction are both set; leave one null.")
        table = read_label_table(Path(file), None if root is None else Path(root), fmt, columns, classes)
        augment = augment or AugmentSpec()
        super().__init__(options, augment, table.class_names, data_config, on_corrupt=on_corrupt, **file_options)
        if table.multi_label and shots_per_class is not None:
            raise ConfigError(
                f"{WHERE}.shots_per_class={shots_per_class}: {table.file} is multi-label, where 'N images per class' "
                f"has no exact meaning (one image counts for several classes). Fix: {WHERE}.shots_per_class=null, "
                f"and {WHERE}.label_fraction=<0..1> to keep a fraction of the training images (stratified)."
            )
        self.table: LabelTable = table
        self.multi_label = table.multi_label
        given = set(table.splits or ())
        self.val_fraction = 0.0 if "val" in given else val_fraction
        self.test_fraction = 0.0 if "test" in given else test_fraction
        check_split_fractions(self.val_fraction, self.test_fraction)
        if table.splits is not None and "train" not in given:
            raise DataError(
                f"data.file={table.file}: no row of split column '{columns.split}' is 'train'. Fix: mark the "
                f"training rows 'train', or set data.split_column=null to split by fractions."
            )
        self.shots_per_class = shots_per_class
        self.label_fraction = label_fraction

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], data_config: DataConfig) -> LabelFileDataModule:
        """Build from the plain ``data`` config; see ``conf/data/label_file.yaml``."""
        shots, fraction = read_shots(cfg)
        columns = Columns(
            path=_read_str(cfg, "path_column", "path", "path"),  # type: ignore[arg-type]
            label=read_label_columns(cfg),
            delimiter=read_delimiter(cfg),
            split=_read_str(cfg, "split_column", None, "split"),
        )
        return cls(
            read_required_str(cfg, "file", FILE_EXAMPLE),
            data_config,
            read_common(cfg, data_config.input_size, default_workers=2),
            parse_augment(cfg.get("augment")),
            root=_read_str(cfg, "root", None, "'~/photos'"),
            fmt=read_format(cfg),
            columns=columns,
            classes=read_classes(cfg),
            shots_per_class=shots,
            label_fraction=fraction,
            val_fraction=read_float(cfg, "val_fraction", 0.15, low_open=True),  # type: ignore[arg-type]
            test_fraction=read_float(cfg, "test_fraction", 0.2, low_open=True),  # type: ignore[arg-type]
            **read_file_options(cfg),
        )

    def check_sources(self) -> None:
        """Check that every image the label file lists exists (no image is opened).

        Raises:
            DataError: Naming the missing files, their rows and the count.
        """
        self.table.check_images_exist()

    def _readable(self) -> np.ndarray:
        """Indices of the samples to keep: all, or (``on_corrupt=skip``) those whose file can be read.

        Raises:
            DataError: Missing files; unreadable files with ``on_corrupt=fail``.
        """
        table = self.table
        table.check_images_exist()
        bad = find_unreadable(table.paths)
        keep = np.arange(len(table.paths))
        if not bad:
            return keep
        shown = "; ".join(f"{p} ({reason})" for p, reason in bad[:SHOW]) + ("; …" if len(bad) > SHOW else "")
        if self.on_corrupt == "fail":
            raise DataError(
                f"data.file={table.file}: {len(bad)} of {len(table.paths)} image files it lists cannot be read: "
                f"{shown}. Fix: delete or replace them, or set data.on_corrupt=skip to leave them out (counted and "
                f"logged)."
            )
        dropped = {p for p, _ in bad}
        self.skipped = [p for p, _ in bad]
        log.warning("data.on_corrupt=skip: left out %d unreadable of %d image files: %s", len(bad), len(keep), shown)
        return np.asarray([i for i in keep if table.paths[i] not in dropped], dtype=np.int64)

    def _check_class_sizes(self, targets: np.ndarray, pool: np.ndarray) -> None:
        """Refuse a class too small to reach every carved split (single-label); warn for multi-label.

        :func:`~transferlab.data.splits.stratified_split` never holds out a class's last training sample, so a
        class of 1 image is in no carved split, and one of 2 in only one of val and test. Classes of
        ``data.classes`` that the file never names pass (a class list shared with other data).

        Args:
            targets: Labels of the kept samples.
            pool: Indices (into ``targets``) of the samples the carved splits come from.
        """
        needed = 1 + (self.val_fraction > 0) + (self.test_fraction > 0)
        if self.multi_label:
            counts, listed = (targets[pool] > 0).sum(axis=0), (self.table.targets > 0).any(axis=0)
        else:
            counts = np.bincount(targets[pool], minlength=self.num_classes)
            listed = np.bincount(self.table.targets, minlength=self.num_classes) > 0
        small = [c for c in range(self.num_classes) if listed[c] and counts[c] < needed]
        if not small:
            return
        c, n = small[0], int(counts[small[0]])
        where = "train rows" if self.table.splits is not None else "images"
        carved = [s for s, f in (("val", self.val_fraction), ("test", self.test_fraction)) if f > 0]
        reach = " and ".join(["train", *carved])
        if self.multi_label:
            log.warning(
                "data.file=%s: %d labels (e.g. '%s', on %d %s) are too rare to reach %s",
                self.table.file, len(small), self.class_names[c], n, where, reach,
            )  # fmt: skip
            return
        raise DataError(
            f"data.file={self.table.file}: class '{self.class_names[c]}' has {n} {where} ({len(small)} classes have "
            f"fewer than {needed}); each class needs {needed} so that one reaches {reach} "
            f"(data.val_fraction={self.val_fraction}, data.test_fraction={self.test_fraction}). Fix: add images of "
            f"the class, drop its rows, or provide the splits in a column (data.split_column)."
        )

    def setup(self, stage: str | None = None) -> None:
        """Check the files, split the samples and attach the train/eval transforms (once)."""
        if self.is_setup:
            return
        keep = self._readable()
        table = self.table
        targets = table.targets[keep]
        files = ImageFileList([(table.paths[i], _label(table.targets[i])) for i in keep], self.on_corrupt)
        # Strata: the class (single-label) or the rarest positive label (multi-label), counted on every kept row.
        strata = rarest_label_strata(targets) if self.multi_label else targets
        names = np.asarray(table.splits)[keep] if table.splits is not None else np.full(len(keep), "train")
        given = {s: np.flatnonzero(names == s) for s in ("train", "val", "test")}
        pool = given["train"]
        self._check_class_sizes(targets, pool)
        carved = stratified_split(strata[pool], self.val_fraction, self.test_fraction, self.options.seed)
        train = subsample_per_class(
            strata,
            pool[carved.train],
            self.options.seed,
            shots_per_class=self.shots_per_class,
            label_fraction=self.label_fraction,
            class_names=self.class_names,
        )
        val = given["val"] if self.val_fraction == 0 else pool[carved.val]
        test = given["test"] if self.test_fraction == 0 else pool[carved.test]
        self.build_splits(files, {"train": train, "val": val, "test": test})

    def describe(self) -> str:
        """The run-log line; for multi-label data it says so, with the labels per image."""
        text = super().describe()
        if not self.multi_label:
            return text
        per_image = self.table.targets.sum(axis=1)
        none = int((per_image == 0).sum())
        names = ", ".join(self.class_names[:5]) + (", …" if self.num_classes > 5 else "")  # as the base's line
        what = f"multi-label, {self.num_classes} labels ({names}), {per_image.mean():.1f} labels/image"
        what += f", {none} images with no label" if none else ""
        return text.replace(f"{self.num_classes} classes ({names})", what, 1)


def _label(target: np.ndarray) -> Any:
    """A sample's label for :class:`ImageFileList`: an ``int``, or the multi-hot row as it is."""
    return int(target) if target.ndim == 0 else target
