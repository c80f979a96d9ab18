"""What ``predict`` reads: image files, folders (recursive), globs and CSV files of paths → one list of files.

Named files are always kept (an unreadable one gets a row saying why); inside folders and globs only files
with an image suffix are taken, and the others are counted, so a ``notes.txt`` beside the photos is reported
once instead of failing a row per file. A CSV (``.csv``/``.tsv``) is a list of paths: its path column is
``path`` (or ``file``, ``filename``, ``image``, ``filepath``), or ``--path-column``; relative paths are read
from the CSV's folder.
"""

from __future__ import annotations

import csv
import glob
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from transferlab.errors import DataError

#: Column names taken as the path column of a CSV of inputs, in this order.
PATH_COLUMNS = ("path", "file", "filename", "image", "filepath", "image_path")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}


def image_suffixes() -> frozenset[str]:
    """File suffixes PIL can open (``.jpg``, ``.png``, ``.webp``, …), lower case."""
    Image.init()
    return frozenset(s.lower() for s in Image.registered_extensions())


@dataclass
class Inputs:
    """The files to predict and what was left out.

    Attributes:
        files: Image files, in the order given (folders sorted), each once.
        skipped: Files inside folders or globs without an image suffix (not predicted).
    """

    files: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def _read_table(path: Path, column: str | None) -> list[Path]:
    delimiter = TABLE_SUFFIXES[path.suffix.lower()]
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read as a CSV of image paths ({err}). Fix: a UTF-8 text file.") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path}: empty CSV, no header, no paths. Fix: a header row with a 'path' column, then paths.")
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    wanted = [column] if column else list(PATH_COLUMNS)
    index = next((lowered.index(w.lower()) for w in wanted if w.lower() in lowered), None)
    if index is None:
        what = f"column {column!r}" if column else f"path column ({', '.join(PATH_COLUMNS)})"
        raise DataError(
            f"{path}: no {what} in its header (columns: {', '.join(header) or 'none'}). Fix: name the column of "
            f"image paths 'path', or pass --path-column {header[0] if header else 'NAME'}."
        )
    base = path.parent
    out = []
    for row in rows[1:]:
        value = row[index].strip() if index < len(row) else ""
        if value:
            p = Path(value).expanduser()
            out.append(p if p.is_absolute() else base / p)
    if not out:
        raise DataError(f"{path}: the {header[index]!r} column lists no paths. Fix: one image path per row.")
    return out


def _folder(folder: Path, suffixes: frozenset[str], found: Inputs) -> int:
    count = 0
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        if p.suffix.lower() in suffixes:
            found.files.append(p)
            count += 1
        else:
            found.skipped.append(p)
    return count


def collect_inputs(items: list[str], path_column: str | None = None) -> Inputs:
    """Expand the command line's inputs (see the module docstring).

    Raises:
        DataError: For an input that does not exist, a glob that matches nothing, a folder without images, a
            CSV without a path column, or no input at all.
    """
    if not items:
        raise DataError("no input: name image files, folders, globs or a CSV of paths. Fix: predict RUN photos/")
    suffixes = image_suffixes()
    found = Inputs()
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            if _folder(path, suffixes, found) == 0:
                raise DataError(
                    f"{path}: no image files in this folder or below it (suffixes like .jpg, .png). Fix: name a "
                    "folder of images, or the image files themselves."
                )
        elif path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
            found.files.extend(_read_table(path, path_column))
        elif path.is_file():
            found.files.append(path)
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise DataError(f"{item}: the pattern matches no file. Fix: check it (quote it for the shell).")
            found.files.extend(m for m in files if m.suffix.lower() in suffixes)
            found.skipped.extend(m for m in files if m.suffix.lower() not in suffixes)
        else:
            raise DataError(f"{item}: no such file or folder. Fix: check the path.")
    seen: set[Path] = set()
    unique = []
    for p in found.files:  # a file named twice (a folder and a glob) is predicted once
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    found.files = unique
    return found
