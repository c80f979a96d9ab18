"""Where ``predict``'s rows go: a CSV or JSON-lines file (written atomically), or CSV on standard output."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from transferlab.errors import DataError

if TYPE_CHECKING:  # the writers are imported before torch is (predict checks its output first)
    from transferlab.deploy.predict import Prediction

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}


def check_output(path: Path | None, force: bool) -> str:
    """The output format, after checking that ``path`` can be written (before anything is predicted).

    Raises:
        DataError: For a suffix that is not .csv/.jsonl, a missing folder, an existing file without ``force``,
            or a folder that cannot be written.
    """
    if path is None:
        return "csv"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"--output {path}: unknown suffix {path.suffix!r}. Fix: name a .csv or a .jsonl file.")
    if not path.parent.is_dir():
        raise DataError(
            f"--output {path}: the folder {path.parent} does not exist. Fix: create it first (mkdir -p {path.parent})."
        )
    if path.is_dir():
        raise DataError(f"--output {path}: is a folder. Fix: name a file in it, e.g. {path / 'predictions.csv'}.")
    if path.exists() and not force:
        raise DataError(f"--output {path}: the file exists and is kept. Fix: name another file, or pass --force.")
    if not os.access(path.parent, os.W_OK):
        raise DataError(f"--output {path}: the folder {path.parent} is not writable. Fix: write somewhere else.")
    return fmt


def csv_header(top_k: int) -> list[str]:
    """Columns of the CSV: path, the prediction, its probability, the top-k pairs, the error."""
    pairs = [c for i in range(1, top_k + 1) for c in (f"top{i}", f"top{i}_probability")]
    return ["path", "label", "probability", *pairs, "error"]


def csv_row(p: Prediction, top_k: int) -> list[Any]:
    """One CSV row (several labels of a multi-label prediction are joined with ``;``)."""
    pairs: list[Any] = []
    for i in range(top_k):
        pairs += [p.top_k[i][0], f"{p.top_k[i][1]:.6f}"] if i < len(p.top_k) else ["", ""]
    scores = ";".join(f"{s:.6f}" for s in p.scores)
    return [str(p.path), ";".join(p.labels), scores, *pairs, p.error or ""]


def json_row(p: Prediction, multi_label: bool) -> dict[str, Any]:
    """One JSON-lines object."""
    row: dict[str, Any] = {"path": str(p.path)}
    if p.error is not None:
        return row | {"error": p.error}
    if multi_label:
        row["labels"] = [{"label": n, "score": round(s, 6)} for n, s in zip(p.labels, p.scores, strict=True)]
    else:
        row |= {"label": p.labels[0], "probability": round(p.scores[0], 6)}
    row["top_k"] = [{"label": n, "probability": round(v, 6)} for n, v in p.top_k]
    return row


class RowWriter:
    """Writes rows as they come; a file appears under its name only when complete (temp file, then rename).

    Args:
        path: The output file, or ``None`` for CSV on standard output.
        fmt: ``csv`` or ``jsonl``.
        top_k: Width of the CSV's top-k columns.
        multi_label: Whether rows hold several labels.
    """

    def __init__(self, path: Path | None, fmt: str, top_k: int, multi_label: bool) -> None:
        self.path, self.fmt, self.top_k, self.multi_label = path, fmt, top_k, multi_label
        self.tmp = None if path is None else path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.stream: IO[str] = sys.stdout if self.tmp is None else self.tmp.open("w", newline="", encoding="utf-8")
        self.csv = csv.writer(self.stream, lineterminator="\n") if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(csv_header(top_k))

    def write(self, p: Prediction) -> None:
        """Write one row."""
        if self.csv is not None:
            self.csv.writerow(csv_row(p, self.top_k))
        else:
            self.stream.write(json.dumps(json_row(p, self.multi_label)) + "\n")

    def close(self, complete: bool) -> None:
        """Close; move the file into place if ``complete``, else delete the partial one."""
        if self.tmp is None:
            self.stream.flush()
            return
        self.stream.close()
        if complete:
            os.replace(self.tmp, self.path)  # type: ignore[arg-type]
        else:
            self.tmp.unlink(missing_ok=True)
