"""Runs stopped from outside: SIGKILL (twice), a truncated newest checkpoint, SIGINT/SIGTERM (once and twice).

Every stopped run is resumed with ``transferlab resume`` and must end with the same ``metrics.json`` (every
field but timings) and the same weights as an uninterrupted run of the same job.
"""

from __future__ import annotations

import signal
import time

import pytest
import torch

from tests.run.killer import MARKS_ENV
from tests.run.outside import EVERY_EPOCH, JOB, assert_same_run, finish, kill_group, start, wait_for
from transferlab.rundir.layout import last_checkpoint

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("interrupts") / "full"
    code, out, err = finish(start("train", *JOB, f"hydra.run.dir={run_dir}", cwd=run_dir.parent))
    assert code == 0, out + err
    return run_dir


@pytest.mark.slow  # three starts of a paced 3-stage run
def test_a_run_sigkilled_twice_from_outside_resumes_to_the_uninterrupted_record(uninterrupted, tmp_path):
    run_dir = tmp_path / "killed"
    proc = start("train", *JOB, *EVERY_EPOCH, f"hydra.run.dir={run_dir}", cwd=tmp_path, slow=0.3)
    wait_for(last_checkpoint(run_dir, "top"), proc)  # inside stage 2: its first epoch is written
    assert kill_group(proc) == -signal.SIGKILL
    proc = start("resume", str(run_dir), cwd=tmp_path, slow=0.3)
    wait_for(last_checkpoint(run_dir, "all"), proc)  # inside stage 3
    assert kill_group(proc) == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists(), "killed twice: not finished"
    code, out, err = finish(start("resume", str(run_dir), cwd=tmp_path))
    assert code == 0, out + err
    assert_same_run(run_dir, uninterrupted)  # stage 2's row included: the bug this test was written for


@pytest.mark.slow
def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_good_one(uninterrupted, tmp_path):
    run_dir = tmp_path / "truncated"
    proc = start("train", *JOB, *EVERY_EPOCH, f"hydra.run.dir={run_dir}", cwd=tmp_path, slow=0.3)
    newest = last_checkpoint(run_dir, "all")
    wait_for(newest, proc)
    kill_group(proc)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a disk that filled up, a bad copy
    code, out, err = finish(start("resume", str(run_dir), cwd=tmp_path))
    assert code == 0, out + err
    log = (run_dir / "train.log").read_text()
    assert "cannot be used" in log and "resume: continuing at step top" in log, log
    assert_same_run(run_dir, uninterrupted)


@pytest.mark.slow
def test_resume_without_a_readable_checkpoint_is_one_paragraph(tmp_path):
    run_dir = tmp_path / "broken"
    code, out, err = finish(start("train", *JOB, *EVERY_EPOCH, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    assert code == 0, out + err
    (run_dir / "metrics.json").unlink()  # as if killed after its last checkpoint
    for path in run_dir.glob("checkpoints/*/last.ckpt"):
        path.write_bytes(b"PK\x03\x04 not a whole zip")
    code, out, err = finish(start("resume", str(run_dir), cwd=tmp_path))
    assert code == 2, out + err
    assert "Traceback" not in err and "no usable checkpoint" in err and "Fix:" in err, err
    assert not (run_dir / "failure.json").exists() or "ResumeError" in (run_dir / "failure.json").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_epoch_writes_its_checkpoint_and_says_how_to_continue(
    uninterrupted, tmp_path, signum, code
):
    run_dir, marks = tmp_path / "stopped", tmp_path / "marks"
    marks.mkdir()
    # the default last_min_interval_s (30 s): without the signal, top's first epoch would not be written
    proc = start("train", *JOB, f"hydra.run.dir={run_dir}", cwd=tmp_path, slow=0.5, extra_env={MARKS_ENV: str(marks)})
    wait_for(marks / "top.0.0", proc)  # the first batch of stage 2
    proc.send_signal(signum)
    status, out, err = finish(proc)
    assert status == code, out + err
    lines = [line for line in err.splitlines() if line.startswith("transferlab: stopped")]
    assert len(lines) == 1 and f"Continue with: transferlab resume {run_dir}" in lines[0], err
    assert "Traceback" not in err, err
    saved = torch.load(last_checkpoint(run_dir, "top"), map_location="cpu", weights_only=True)
    assert saved["epoch"] == 0, "the epoch during which the signal came is the one written"
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "failure.json").exists()
    status, out, err = finish(start("resume", str(run_dir), cwd=tmp_path))
    assert status == 0, out + err
    assert_same_run(run_dir, uninterrupted)


@pytest.mark.slow
def test_a_second_sigint_stops_at_once_and_the_run_still_resumes(uninterrupted, tmp_path):
    run_dir, marks = tmp_path / "twice", tmp_path / "marks"
    marks.mkdir()
    proc = start("train", *JOB, *EVERY_EPOCH, f"hydra.run.dir={run_dir}", cwd=tmp_path, slow=3.0,
                 extra_env={MARKS_ENV: str(marks)})  # fmt: skip
    wait_for(marks / "top.0.0", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    stopped = time.monotonic()
    proc.send_signal(signal.SIGINT)
    status, out, err = finish(proc)
    assert time.monotonic() - stopped < 2.5, "the second SIGINT stops at once, not after the epoch's 3 s batches"
    assert status == 130 and "stopped at once by a second SIGINT" in err and "Traceback" not in err, err
    assert "transferlab resume" in err, err
    status, out, err = finish(start("resume", str(run_dir), cwd=tmp_path))
    assert status == 0, out + err
    assert_same_run(run_dir, uninterrupted)
