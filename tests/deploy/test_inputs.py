"""What ``predict`` reads: files, folders, globs and CSVs of paths, and the errors of each."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from transferlab.deploy.inputs import collect_inputs
from transferlab.errors import DataError


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)
    return path


def test_folders_are_searched_recursively_and_other_files_counted(tmp_path):
    a, b = _png(tmp_path / "x" / "a.png"), _png(tmp_path / "x" / "deep" / "b.PNG")
    (tmp_path / "x" / "notes.txt").write_text("hi")
    _png(tmp_path / "x" / ".hidden" / "c.png")
    found = collect_inputs([str(tmp_path / "x")])
    assert found.files == [a, b]
    assert found.skipped == [tmp_path / "x" / "notes.txt"]


def test_named_files_are_kept_whatever_their_suffix_and_duplicates_dropped(tmp_path):
    a = _png(tmp_path / "a.png")
    odd = tmp_path / "photo.dat"
    odd.write_bytes(b"\x00")
    found = collect_inputs([str(a), str(odd), str(tmp_path / "*.png")])
    assert found.files == [a, odd]


def test_a_csv_lists_paths_relative_to_its_folder(tmp_path):
    a = _png(tmp_path / "imgs" / "a.png")
    (tmp_path / "list.csv").write_text("id,File\n1,imgs/a.png\n2,\n3,/abs/missing.png\n")
    found = collect_inputs([str(tmp_path / "list.csv")])
    assert found.files == [a, Path("/abs/missing.png")]  # a missing listed file becomes an error row later
    (tmp_path / "t.tsv").write_text("name\tpic\nx\timgs/a.png\n")
    assert collect_inputs([str(tmp_path / "t.tsv")], path_column="pic").files == [a]


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: (d / "empty").mkdir() or d / "empty", "no image files in this folder"),
        (lambda d: d / "nope.png", "no such file or folder"),
        (lambda d: d / "*.jpeg", "matches no file"),
        (lambda d: (d / "p.csv").write_text("a,b\n1,2\n") and d / "p.csv", "no path column"),
        (lambda d: (d / "e.csv").write_text("\n\n") and d / "e.csv", "empty CSV"),
        (lambda d: (d / "h.csv").write_text("path\n") and d / "h.csv", "lists no paths"),
    ],
)
def test_bad_inputs_are_clear_errors(tmp_path, make, needle):
    with pytest.raises(DataError, match=needle):
        collect_inputs([str(make(tmp_path))])


def test_a_csv_without_the_named_column_names_the_columns_it_has(tmp_path):
    (tmp_path / "p.csv").write_text("path,label\nx.png,1\n")
    with pytest.raises(DataError, match=r"column 'file'.*columns: path, label"):
        collect_inputs([str(tmp_path / "p.csv")], path_column="file")
