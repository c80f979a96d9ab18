"""Claiming run dirs: atomic, one dir per claimant, and a held dir refuses a second process."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from transferlab.errors import ConfigError
from transferlab.rundir.claim import RunDirBusy, RunDirLock, claim_new_dir, ensure_writable_dir


def _claim(args: tuple[str, int]) -> str:
    path, _ = args
    return str(claim_new_dir(Path(path), "hydra.run.dir"))


def test_claimants_of_one_name_in_the_same_instant_each_get_their_own_dir(tmp_path):
    target = tmp_path / "runs" / "2026-12-01_12-00-00"
    with mp.get_context("spawn").Pool(6) as pool:
        dirs = pool.map(_claim, [(str(target), i) for i in range(12)])
    assert len(set(dirs)) == 12, f"every claimant gets a dir of its own: {sorted(dirs)}"
    assert str(target) in dirs and f"{target}_11" in dirs, sorted(dirs)
    assert all(Path(d).is_dir() for d in dirs)


def test_a_taken_name_moves_on_to_a_suffix(tmp_path):
    target = tmp_path / "2026-12-01_12-00-00"
    target.mkdir()
    assert claim_new_dir(target, "hydra.run.dir") == tmp_path / "2026-12-01_12-00-00_1"


def test_a_held_dir_refuses_a_second_holder_and_is_free_again_after(tmp_path):
    with RunDirLock(tmp_path, "hydra.run.dir"):
        with pytest.raises(RunDirBusy) as info, RunDirLock(tmp_path, "hydra.run.dir"):
            pass
        assert "another transferlab process" in str(info.value) and str(tmp_path) in str(info.value)
    with RunDirLock(tmp_path, "hydra.run.dir"):  # released: free again
        pass


def test_a_dir_that_cannot_be_made_names_the_key_and_the_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as info:
        ensure_writable_dir(blocker / "run", "hydra.sweep.dir")
    text = str(info.value)
    assert text.startswith(f"hydra.sweep.dir={blocker / 'run'}: cannot be created or written") and "Fix:" in text
