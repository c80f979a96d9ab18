"""Backbone ranking study, fine-tuning ground truth: 8 candidate backbones × 2 target tasks, LP-FT, 3 seeds.

The zoo: three ImageNet EfficientNet-Lites, two random inits, and three checkpoints pretrained here on digits
0–4 (small_cnn 12 epochs, small_cnn 1 epoch, EfficientNet-Lite0 fine-tuned 1 epoch). The targets: digits 5–9
(20 shots/class) and the bundled-photo crops (19 classes, 10 shots/class), both at 64 px. Every candidate is
fine-tuned on every target with ``strategy=lp_ft`` (its shipped 2 probe + 6 fine-tune epochs), seeds 0, 1, 2.

Run from the repository root (phases in order; ``all`` runs every one):

    python experiments/backbone_ranking/study.py                     # data, pretrain, finetune, summarize
    python experiments/backbone_ranking/study.py --phase finetune    # one phase
    python experiments/backbone_ranking/study.py --phase summarize   # only rebuild the tables

Every job is an ordinary ``transferlab train`` run or ``transferlab train -m`` Hydra multirun; each command is
printed and appended to ``commands.txt``. A finished run or sweep is skipped (a sweep re-run in its dir would
skip its finished jobs anyway). Job outputs go to ``outputs/backbone_ranking/`` (git-ignored); ``finetune.csv``
and ``finetune.md`` are written next to this file.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
COMMON = ["callbacks=none", "trainer.enable_progress_bar=false", "hydra/launcher=parallel"]
#: the fine-tuning recipe: LP-FT with its shipped epochs (2 probe + 6 fine-tune)
STRATEGY = ["strategy=lp_ft"]

#: pretrained checkpoint name → overrides of its single ``transferlab train`` run (all at 64 px, seed 0).
#: experiment=pretrain_digits04 adds a ``train`` stage to any strategy, so the finetune one composes by hand.
PRETRAIN: dict[str, list[str]] = {
    "small_cnn_digits04": ["experiment=pretrain_digits04", "data.image_size=64", "seed=0"],
    "small_cnn_digits04_1ep": [
        "experiment=pretrain_digits04",
        "data.image_size=64",
        "strategy.stages.train.epochs=1",
        "strategy.stages.train.warmup_epochs=0",
        "seed=0",
    ],
    "lite0_digits04_1ep": [
        "backbone=efficientnet_lite0",
        "backbone.weights=package",
        "data=digits",
        "data.classes=[0,1,2,3,4]",
        "data.image_size=64",
        "strategy=finetune",
        "strategy.stages.finetune.epochs=1",
        "strategy.stages.finetune.warmup_epochs=0",  # the shipped 1 warm-up epoch must be shorter than the stage
        "seed=0",
    ],
}


def pretrain_dir(out: Path, name: str) -> Path:
    """The run dir of one pretraining run."""
    return out / "pretrain" / name


def zoo(out: Path) -> dict[str, tuple[str, list[str]]]:
    """Candidate short name → (candidate string for ``transferlab rank candidates=[...]``, train overrides)."""
    found: dict[str, tuple[str, list[str]]] = {
        "efficientnet_lite0": ("efficientnet_lite0", ["backbone=efficientnet_lite0"]),
        "efficientnet_lite1": ("efficientnet_lite1", ["backbone=efficientnet_lite1"]),
        "efficientnet_lite2": ("efficientnet_lite2", ["backbone=efficientnet_lite2"]),
        "efficientnet_lite0_null": (
            "efficientnet_lite0@null",
            ["backbone=efficientnet_lite0", "backbone.weights=null"],
        ),
        "small_cnn_null": ("small_cnn@null", ["backbone=small_cnn"]),  # its conf default weights is null
    }
    for name in PRETRAIN:
        run = pretrain_dir(out, name)
        found[f"ckpt_{name}"] = (f"checkpoint:{run}", ["backbone=checkpoint", f"backbone.weights={run}"])
    return found


def tasks(out: Path) -> dict[str, list[str]]:
    """Target task name → data overrides (photos: the peer comparison's, benchmarks/peers/regimes.py)."""
    return {
        "digits59": ["data=digits", "data.classes=[5,6,7,8,9]", "data.shots_per_class=20", "data.image_size=64"],
        "photos": [
            "data=image_folder",
            f"data.root={out / 'photos'}",
            "data.shots_per_class=10",
            "data.image_size=64",
            "data.num_workers=0",
            "data.augment.random_resized_crop=null",
            "data.augment.hflip=false",
        ],
    }


def sweep_dir(out: Path, task: str, short: str) -> Path:
    """The multirun dir of one task × candidate."""
    return out / "finetune" / task / short


def finetune_command(out: Path, task: str, short: str) -> list[str]:
    """The ``transferlab train -m`` sweep over seeds of one task × candidate."""
    return [
        "transferlab",
        "train",
        "-m",
        *tasks(out)[task],
        *zoo(out)[short][1],
        *STRATEGY,
        f"seed={','.join(map(str, SEEDS))}",
        *COMMON,
        f"hydra.sweep.dir={sweep_dir(out, task, short)}",
        "hydra.sweep.subdir=seed${seed}",
    ]


def run(cmd: list[str]) -> bool:
    """Print ``cmd``, append it to ``commands.txt`` and run it; whether it exited 0."""
    line = shlex.join(cmd)
    print("+", line, flush=True)
    with (HERE / "commands.txt").open("a") as f:
        f.write(line + "\n")
    return subprocess.run(cmd, check=False).returncode == 0


def phase_data(out: Path) -> None:
    """Write the photos image folder (19 classes × 40 crops of 64 px) unless it is already there."""
    photos = out / "photos"
    if photos.is_dir() and any(photos.iterdir()):
        print(f"skip (exists): {photos}", flush=True)
        return
    if not run([sys.executable, "benchmarks/peers/make_photos.py", "--out", str(photos)]):
        sys.exit("make_photos.py failed")


def phase_pretrain(out: Path) -> None:
    """Train the three checkpoint candidates on digits 0–4 and check each left its ``model.safetensors``."""
    for name, overrides in PRETRAIN.items():
        run_dir = pretrain_dir(out, name)
        if not (run_dir / "metrics.json").is_file():
            cmd = ["transferlab", "train", *overrides, *COMMON[:2], f"hydra.run.dir={run_dir}"]
            if not run(cmd):
                sys.exit(f"pretraining {name} failed: see {run_dir}/failure.json and {run_dir}/train.log")
        else:
            print(f"skip (finished): {run_dir}", flush=True)
        if not (run_dir / "model.safetensors").is_file():
            sys.exit(f"{run_dir} has no model.safetensors")


def _finished(sweep: Path) -> bool:
    return all((sweep / f"seed{s}" / "metrics.json").is_file() for s in SEEDS)


def phase_finetune(out: Path) -> None:
    """One LP-FT sweep over seeds per task × candidate; the sweep's wall time goes to ``<sweep>/wall.json``."""
    failed = []
    for task in tasks(out):
        for short in zoo(out):
            sweep = sweep_dir(out, task, short)
            if _finished(sweep):
                print(f"skip (finished): {sweep}", flush=True)
                continue
            todo = sum(not (sweep / f"seed{s}" / "metrics.json").is_file() for s in SEEDS)
            start = time.perf_counter()
            ok = run(finetune_command(out, task, short))
            if ok and _finished(sweep):
                wall = {"seconds": time.perf_counter() - start, "jobs_run": todo, "jobs": len(SEEDS)}
                (sweep / "wall.json").write_text(json.dumps(wall, indent=2) + "\n")
            else:
                failed.append(str(sweep))
    if failed:
        sys.exit("failed sweeps (see their failure.json / train.log):\n  " + "\n  ".join(failed))


def collect(out: Path) -> list[dict]:
    """One row per finished fine-tuning job: task, candidate, seed, val/test accuracy, seconds."""
    rows = []
    for task in tasks(out):
        for short, (candidate, _) in zoo(out).items():
            for metrics_file in sorted(sweep_dir(out, task, short).glob("seed*/metrics.json")):
                metrics = json.loads(metrics_file.read_text())
                cfg = yaml.safe_load((metrics_file.parent / "config.yaml").read_text())
                rows.append(
                    {
                        "task": task,
                        "candidate": short,
                        "candidate_string": candidate,
                        "seed": cfg["seed"],
                        "val_acc": metrics["final"]["val/acc"],
                        "test_acc": metrics["final"]["test/acc"],
                        "seconds": round(float(metrics["seconds"]), 1),
                    }
                )
    return rows


def _machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, no GPU used (trainer default on a CPU-only machine)"


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _pretrain_lines(out: Path) -> list[str]:
    lines = ["| checkpoint | run dir | test/acc on digits 0–4 | seconds |", "|---|---|---|---|"]
    for name in PRETRAIN:
        path = pretrain_dir(out, name) / "metrics.json"
        if path.is_file():
            m = json.loads(path.read_text())
            lines.append(f"| {name} | `{path.parent}` | {m['final']['test/acc']:.3f} | {m['seconds']:.0f} |")
    return lines


def _task_lines(out: Path, task: str, rows: list[dict]) -> list[str]:
    lines = [
        "| candidate | candidate string | n | test/acc mean ± std | val/acc mean | s/job (mean) | sweep wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    total = 0.0
    for short, (candidate, _) in zoo(out).items():
        hit = [r for r in rows if r["task"] == task and r["candidate"] == short]
        if not hit:
            lines.append(f"| {short} | `{candidate}` | 0 | – | – | – | – |")
            continue
        tests, vals = [r["test_acc"] for r in hit], [r["val_acc"] for r in hit]
        wall_file = sweep_dir(out, task, short) / "wall.json"
        wall = json.loads(wall_file.read_text()) if wall_file.is_file() else None
        total += wall["seconds"] if wall else 0.0
        wall_cell = "–" if wall is None else f"{wall['seconds']:.0f}"
        if wall is not None and wall["jobs_run"] != wall["jobs"]:
            wall_cell += f" ({wall['jobs_run']} of {wall['jobs']} jobs run)"
        lines.append(
            f"| {short} | `{candidate}` | {len(hit)} | {statistics.mean(tests):.3f} ± {_std(tests):.3f} | "
            f"{statistics.mean(vals):.3f} | {statistics.mean(r['seconds'] for r in hit):.0f} | {wall_cell} |"
        )
    lines += ["", f"Sum of the sweeps' wall times for {task}: {total:.0f} s ({total / 60:.1f} min)."]
    return lines


def phase_summarize(out: Path) -> None:
    """Write ``finetune.csv`` (one row per job) and ``finetune.md`` (per task: mean ± std over seeds)."""
    rows = collect(out)
    if not rows:
        sys.exit(f"no finished fine-tuning jobs under {out / 'finetune'}")
    with (HERE / "finetune.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = [
        "# Backbone ranking: fine-tuning ground truth (LP-FT, seeds " + ", ".join(map(str, SEEDS)) + ")",
        "",
        f"Written {datetime.date.today().isoformat()} by `python experiments/backbone_ranking/study.py`; "
        f"machine: {_machine()}. Every sweep runs two jobs at a time (`hydra/launcher=parallel`), so a sweep's "
        "wall time is less than the sum of its jobs' seconds. `strategy=lp_ft` with its shipped epochs "
        "(2 probe + 6 fine-tune), the final model is the stage best on val/acc; all data at 64 px. "
        "`commands.txt` holds the exact commands, `finetune.csv` one row per job.",
        "",
        "## Pretrained checkpoints (seed 0, on digits 0–4)",
        "",
        *_pretrain_lines(out),
    ]
    for task, overrides in tasks(out).items():
        text += ["", f"## {task}", "", "Data: `" + " ".join(overrides) + "`", "", *_task_lines(out, task, rows)]
    (HERE / "finetune.md").write_text("\n".join(text) + "\n")
    print((HERE / "finetune.md").read_text())


#: phase name → function, in the order ``all`` runs them
PHASES: dict[str, Callable[[Path], None]] = {
    "data": phase_data,
    "pretrain": phase_pretrain,
    "finetune": phase_finetune,
    "summarize": phase_summarize,
}


def main() -> None:
    """Run one phase, or every phase in order."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=[*PHASES, "all"], default="all", help="which phase to run")
    parser.add_argument("--out", type=Path, default=Path("outputs/backbone_ranking"), help="job output root")
    args = parser.parse_args()
    out = args.out.resolve()
    for name, phase in PHASES.items():
        if args.phase in (name, "all"):
            print(f"== phase {name}", flush=True)
            phase(out)


if __name__ == "__main__":
    main()
