"""Finding jobs: status, errors, overrides, and the missing jobs of basic and Optuna sweeps."""

from __future__ import annotations

import yaml

from tests.report.conftest import write_job, write_multirun
from transferlab.report.collect import collect, expand_basic_sweep, find_job_dirs, parse_overrides

OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def test_done_failed_and_unfinished_jobs_with_their_errors(tmp_path):
    write_job(tmp_path / "done", ["seed=0"], final={"test/acc": 0.5})
    failure = {"error_type": "ValueError", "message": "bad lr\n  Fix: lower it"}
    write_job(tmp_path / "failed", ["seed=1"], failure=failure)
    unfinished = write_job(tmp_path / "killed", ["seed=2"])
    (unfinished / "train.log").write_text(
        "[2026-11-24 06:30:15,976][transferlab.train][INFO] - starting\n"
        "[2026-11-24 06:30:16,000][transferlab.train][ERROR] - CUDA out of memory\n"
    )
    write_job(tmp_path / "running", ["seed=3"])
    jobs = {j.dir.name: j for j in collect([tmp_path]).jobs}
    assert {n: j.status for n, j in jobs.items()} == {
        "done": "done",
        "failed": "failed",
        "killed": "unfinished",
        "running": "unfinished",
    }
    assert jobs["failed"].error == "ValueError: bad lr Fix: lower it"
    assert jobs["killed"].error == "log: CUDA out of memory"
    assert jobs["running"].error == "" and jobs["done"].error == ""
    assert jobs["done"].metrics["final"] == {"test/acc": 0.5}


def test_job_dirs_are_found_recursively_in_numeric_order_without_entering_jobs(tmp_path):
    for n in (10, 2, 1):
        job = write_job(tmp_path / "sweep" / str(n), [f"seed={n}"], final={"test/acc": 0.1})
        write_job(job / "tensorboard" / "nested", ["seed=99"], final={"test/acc": 0.2})  # never a job
    jobs, sweeps = find_job_dirs(tmp_path)
    assert [j.name for j in jobs] == ["1", "2", "10"] and sweeps == []


def test_overrides_are_parsed_by_hydra_into_canonical_values():
    values = parse_overrides(
        ["+a.b=1", "~c", "t=false", "u=False", "lr=1e-3", "data.classes=[0, 1]", "e=null", "g@pkg=opt", "++z=x"]
    )
    assert values == {
        "a.b": "1",
        "c": "<deleted>",
        "t": "False",
        "u": "False",
        "lr": "0.001",
        "data.classes": "[0,1]",
        "e": "null",
        "g@pkg": "opt",
        "z": "x",
    }


def test_basic_sweep_expansion_follows_hydra_job_numbers():
    jobs = expand_basic_sweep(["seed=0,1,2", "strategy=a,b", "r=range(0,2)", "t=false"], {"p": "x,y"})
    assert len(jobs) == 2 * 3 * 2 * 2
    assert jobs[0] == ["p=x", "seed=0", "strategy=a", "r=0", "t=False"]
    assert jobs[1] == ["p=x", "seed=0", "strategy=a", "r=1", "t=False"]
    assert jobs[-1] == ["p=y", "seed=2", "strategy=b", "r=1", "t=False"]


def test_a_basic_sweep_with_a_job_dir_absent_has_one_missing_job(tmp_path):
    sweep = write_multirun(tmp_path / "sweep", ["seed=0,1,2", "strategy=a,b", "epochs=3"])
    expected = expand_basic_sweep(["seed=0,1,2", "strategy=a,b", "epochs=3"])
    for num, overrides in enumerate(expected):
        if num != 3:
            write_job(sweep / str(num), overrides, final={"test/acc": 0.5})
    collection = collect([sweep])
    assert len(collection.jobs) == 5
    (missing,) = collection.missing
    assert missing.num == 3 and missing.sweep_dir == sweep
    assert missing.overrides == ["seed=1", "strategy=b", "epochs=3"]
    (info,) = collection.sweeps
    assert (info.sweeper, info.expected, info.present) == ("basic", 6, 5)


def test_sweep_jobs_under_custom_subdirs_are_matched_by_hydra_job_number(tmp_path):
    sweep = write_multirun(tmp_path / "pretrain", ["seed=0,1,2"])
    for num in (0, 2):
        hydra = {
            "mode": "MULTIRUN",
            "job": {"num": num},
            "sweep": {"dir": "elsewhere/pretrain", "subdir": "seed${seed}"},
            "runtime": {"cwd": "/old/machine", "output_dir": f"/old/machine/elsewhere/pretrain/seed{num}"},
        }
        write_job(sweep / f"seed{num}", [f"seed={num}"], final={"test/acc": 0.5}, hydra=hydra)
    collection = collect([sweep])
    assert [j.num for j in collection.jobs] == [0, 2]
    assert {j.sweep_dir for j in collection.jobs} == {sweep}
    assert [(m.num, m.overrides) for m in collection.missing] == [(1, ["seed=1"])]


def test_optuna_sweep_expects_n_trials_and_reads_its_results(tmp_path):
    sweep = tmp_path / "optuna"  # the Optuna sweeper writes no multirun.yaml: the jobs' hydra.yaml tells
    for num in (0, 1):
        hydra = {
            "mode": "MULTIRUN",
            "job": {"num": num},
            "sweeper": {"_target_": OPTUNA, "n_trials": 4, "direction": "maximize"},
            "sweep": {"dir": str(sweep), "subdir": "${hydra.job.num}"},
            "runtime": {"cwd": str(tmp_path), "output_dir": str(sweep / str(num))},
        }
        write_job(sweep / str(num), [f"lr={0.01 * (num + 1)}"], final={"test/acc": 0.5}, hydra=hydra)
    results = {"name": "optuna", "best_params": {"lr": 0.02}, "best_value": 0.9}
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(results))
    collection = collect([tmp_path])
    (info,) = collection.sweeps
    assert (info.dir, info.sweeper, info.expected, info.present) == (sweep, "optuna", 4, 2)
    assert info.optuna == results
    assert [(m.num, m.overrides) for m in collection.missing] == [(2, None), (3, None)]


def test_a_sweep_whose_expansion_needs_the_config_is_reported_without_missing_jobs(tmp_path):
    sweep = write_multirun(tmp_path / "sweep", ["strategy=glob(*)"])
    write_job(sweep / "0", ["strategy=a"], final={"test/acc": 0.5})
    collection = collect([sweep])
    assert collection.missing == [] and collection.sweeps[0].expected is None
    assert "expected jobs unknown" in collection.sweeps[0].note
