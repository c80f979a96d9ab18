"""Run dirs are claimed, never shared, and a finished run's files are never rewritten (``.hydra/`` included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.clitools import REPO, run_cli
from tests.run.killer import MARKS_ENV
from tests.run.outside import finish, start, wait_for
from transferlab.cli.main import main
from transferlab.report import collect

TINY = [
    "backbone=small_cnn",
    "backbone.weights=null",
    "data=synthetic",
    "data.image_size=16",
    "strategy=finetune",
    "strategy.stages.finetune.epochs=2",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "logger=none",
]


def _files(run_dir: Path) -> dict[Path, bytes]:
    """Every file of a run dir but its job log (Hydra appends each attempt to it) and the lock file."""
    skip = (".transferlab.lock",)
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.suffix != ".log" and p.name not in skip}


@pytest.mark.slow  # concurrent or sweep runs: in .ci/run's slow phase (README suite < 15 min)
def test_two_runs_started_at_once_get_a_dir_each(tmp_path):
    out = tmp_path / "out"
    procs = [
        start("train", *TINY, f"paths.output_root={out}", f"seed={seed}", cwd=tmp_path) for seed in (1, 2)
    ]  # fmt: skip
    results = [finish(p) for p in procs]
    assert all(code == 0 for code, _, _ in results), results
    dirs = sorted((out / "train" / "runs").iterdir())
    assert len(dirs) == 2, f"one dir per run: {dirs}"
    seeds = sorted(json.loads((d / "metrics.json").read_text())["seed"] for d in dirs)
    assert seeds == [1, 2], "each dir holds its own run's results"


@pytest.mark.slow  # concurrent or sweep runs: in .ci/run's slow phase (README suite < 15 min)
def test_a_second_run_in_a_busy_dir_is_refused_and_touches_nothing(tmp_path):
    run_dir, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    first = start(
        "train", *TINY, "+callbacks.extra.slow._target_=tests.run.killer.Slow", "strategy.stages.finetune.epochs=30",
        f"hydra.run.dir={run_dir}", cwd=tmp_path, slow=1.0, extra_env={MARKS_ENV: str(marks)},
    )  # fmt: skip
    wait_for(marks / "finetune.0.0", first)
    second = run_cli("train", *TINY, "seed=9", f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
    assert second.returncode == 2 and "another transferlab process" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    code, out, err = finish(first)
    assert code == 0, out + err
    assert json.loads((run_dir / "metrics.json").read_text())["seed"] == 0, "the first run's results"
    assert not (run_dir / "failure.json").exists()


@pytest.mark.slow  # a real subprocess run: in CI's slow phase, keeping the README suite under 15 min
def test_resume_of_a_finished_run_rewrites_nothing_and_its_job_identity_stays(tmp_path):
    run_dir = tmp_path / "run"
    run_cli("train", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    before = _files(run_dir)
    assert (run_dir / ".hydra" / "overrides.yaml").is_file(), "the job's record is written once, at its start"
    proc = run_cli("resume", str(run_dir), cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0
    assert _files(run_dir) == before, "a finished run's files, .hydra/ included, stay byte for byte"
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert not any(o.startswith("resume") for o in overrides), overrides


@pytest.mark.slow  # concurrent or sweep runs: in .ci/run's slow phase (README suite < 15 min)
def test_resume_of_a_finished_sweep_keeps_its_groups_and_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli("train", "-m", *TINY, f"hydra.sweep.dir={sweep}", "seed=0,1", cwd=tmp_path)
    before = {job: _files(sweep / job) for job in ("0", "1")}
    first = collect([sweep])
    run_cli("resume", str(sweep), cwd=tmp_path)
    assert {job: _files(sweep / job) for job in ("0", "1")} == before
    again = collect([sweep])
    assert [j.overrides for j in again.jobs] == [j.overrides for j in first.jobs]
    assert not again.missing and all(j.status == "done" for j in again.jobs)
    assert all(not any(o.startswith("resume") for o in j.overrides) for j in again.jobs)


@pytest.mark.parametrize(
    ("override", "needle"),
    [("hydra.run.dir=/proc/transferlab-test", "hydra.run.dir=/proc/transferlab-test"),
     ("paths.output_root=/proc/transferlab-test", "hydra.run.dir=/proc/transferlab-test")],
)  # fmt: skip
def test_an_output_dir_that_cannot_be_created_is_one_paragraph(tmp_path, override, needle, capsys):
    with pytest.raises(SystemExit) as info:  # in process: train's preflight refuses before Hydra starts
        main(["train", *TINY, override])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err, err
    assert err.startswith(f"transferlab: error: {needle}") and "Fix:" in err, err


@pytest.mark.slow  # two more subprocesses; rundir/test_claim.py covers the same check in process
def test_an_output_dir_that_cannot_be_written_is_one_paragraph(tmp_path):
    # /proc/self exists and takes no files, even from root; a path under a regular file cannot be created
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for run_dir in ("/proc/self", str(blocker / "run")):
        proc = run_cli("train", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "cannot be created or written" in proc.stderr and "Fix:" in proc.stderr, proc.stderr
