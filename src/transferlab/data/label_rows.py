"""The rows of a label file: CSV, TSV or JSON lines, read with the standard library into cells by column.

Blank lines are skipped, a byte-order mark is dropped, and every problem is a
:class:`~transferlab.errors.DataError` that starts with ``data.file=<file>`` and names the row or line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from transferlab.errors import DataError

LabelFormat = Literal["csv", "tsv", "jsonl"]
FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl")
SUFFIXES: dict[str, LabelFormat] = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Row:
    """One data row as read: its cells by column name and where it is in the file."""

    number: int  # 1-based, counted after the header; blank lines are not counted
    line: int  # 1-based line of the file where the row ends
    cells: dict[str, Any]


def show(value: Any) -> str:
    """A cell's value for a message: its ``repr``, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def at(file: Path, row: Row, column: str | None = None) -> str:
    """Where a message points: ``data.file=<file>: data row N (line L), column 'c'``."""
    col = f", column '{column}'" if column is not None else ""
    return f"data.file={file}: data row {row.number} (line {row.line}){col}"


def detect_format(file: Path, fmt: str | None) -> LabelFormat:
    """The format of ``file``: ``fmt`` when given, else from its suffix.

    Raises:
        DataError: When ``fmt`` is ``None`` and the suffix is not one of :data:`SUFFIXES`.
    """
    if fmt is not None:
        return fmt  # type: ignore[return-value]
    found = SUFFIXES.get(file.suffix.lower())
    if found is None:
        raise DataError(
            f"data.file={file}: cannot tell the format from the suffix {file.suffix or '(none)'!r} (known: "
            f"{', '.join(SUFFIXES)}). Fix: rename the file, or set data.format=csv, tsv or jsonl."
        )
    return found


def _open_text(file: Path) -> Any:
    # utf-8-sig drops the byte-order mark Excel and Notepad write, which would otherwise glue onto the first
    # header name ('\ufeffpath'); newline='' lets the csv module handle line breaks inside quoted cells.
    return open(file, encoding="utf-8-sig", newline="")


def read_rows(file: Path, fmt: LabelFormat | None) -> tuple[list[str], list[Row]]:
    """The columns (in order of first appearance) and the data rows of ``file``; blank lines are skipped.

    Args:
        file: The label file.
        fmt: ``csv``, ``tsv`` or ``jsonl`` (``None`` = from the suffix, see :func:`detect_format`).

    Raises:
        DataError: A missing, empty or non-UTF-8 file, an unknown suffix, a ragged CSV row, a broken quote, a
            JSON-lines line that is not a JSON object.
    """
    if not file.exists():
        raise DataError(f"data.file={file}: file not found. Fix: point data.file at a .csv, .tsv or .jsonl file.")
    if not file.is_file():
        raise DataError(f"data.file={file}: is a folder, not a file. Fix: point data.file at the label file in it.")
    fmt = detect_format(file, fmt)
    try:
        return _read_jsonl(file) if fmt == "jsonl" else _read_csv(file, "\t" if fmt == "tsv" else ",")
    except UnicodeDecodeError as err:
        raise DataError(
            f"data.file={file}: is not UTF-8 text (byte {err.start}: {err.reason}). Fix: save it as UTF-8 "
            f"(Excel: 'CSV UTF-8'; iconv -f latin1 -t utf-8)."
        ) from None


def _read_csv(file: Path, delimiter: str) -> tuple[list[str], list[Row]]:
    header: list[str] | None = None
    rows: list[Row] = []
    with _open_text(file) as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue  # a blank line, or one of empty cells (spreadsheets export those)
                if header is None:
                    header = [c.strip() for c in cells]
                    continue
                if len(cells) != len(header):
                    where = f"data.file={file}: data row {len(rows) + 1} (line {reader.line_num})"
                    raise DataError(
                        f"{where} has {len(cells)} cells, the header has {len(header)} ({', '.join(header)}). "
                        f"Fix: give every row one cell per column; quote a cell that holds the delimiter "
                        f'{delimiter!r} ("a{delimiter}b").'
                    )
                values = (c.strip() for c in cells)
                rows.append(Row(len(rows) + 1, reader.line_num, dict(zip(header, values, strict=True))))
        except csv.Error as err:
            raise DataError(
                f"data.file={file}: line {reader.line_num} is not valid {'TSV' if delimiter == chr(9) else 'CSV'} "
                f"({err}). Fix: close the quote, or quote the whole cell."
            ) from None
    if header is None:
        raise DataError(f"data.file={file}: the file is empty. Fix: write a header line (e.g. path,label) and rows.")
    return header, rows


def _read_jsonl(file: Path) -> tuple[list[str], list[Row]]:
    columns: dict[str, None] = {}
    rows: list[Row] = []
    with _open_text(file) as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"data.file={file}: line {line} is not valid JSON ({err.msg}, column {err.colno}). Fix: write "
                    'one JSON object per line, e.g. {"path": "a.jpg", "label": "cat"}.'
                ) from None
            if not isinstance(obj, dict):
                raise DataError(
                    f"data.file={file}: line {line} is a JSON {type(obj).__name__} ({show(text.strip())}), not an "
                    'object. Fix: write one JSON object per line, e.g. {"path": "a.jpg", "label": "cat"}.'
                )
            columns.update(dict.fromkeys(str(k) for k in obj))
            rows.append(Row(len(rows) + 1, line, obj))
    if not rows:
        raise DataError(f'data.file={file}: the file is empty. Fix: write one JSON object per line ({{"path": …}}).')
    return list(columns), rows
