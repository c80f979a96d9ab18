"""Pretrain on digits 0–4, transfer to digits 5–9: strategies × label budgets × seeds, all real runs.

Run from the repository root (about 35 minutes on 2 CPU cores, two jobs at a time):

    python experiments/digits_transfer/study.py            # runs every sweep, then writes the tables
    python experiments/digits_transfer/study.py --summarize  # only rebuild the tables from existing runs

Every job is an ordinary ``transferlab train -m`` Hydra multirun; the exact commands are printed and saved to
``commands.txt``. Job outputs go to ``outputs/digits_transfer/`` (git-ignored); the tables
(``results.md``, ``results.csv``) are written next to this file.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SEEDS = "0,1,2,3,4"
SHOTS = "5,20,null"
# two jobs at a time (joblib, one torch thread each): small jobs use 2 cores better as 2 processes
COMMON = ["callbacks=none", "trainer.enable_progress_bar=false", "data.batch_size=32", "hydra/launcher=parallel"]

# variant label -> overrides; epochs are given per strategy because stage names differ.
VARIANTS: dict[str, list[str]] = {
    "scratch": ["strategy=scratch", "strategy.stages.train.epochs=15"],
    "feature_extraction (random frozen)": [
        "strategy=feature_extraction",
        "strategy.init=random",
        "strategy.stages.probe.epochs=15",
    ],
    "feature_extraction": ["strategy=feature_extraction", "strategy.stages.probe.epochs=15"],
    "finetune": ["strategy=finetune", "strategy.stages.finetune.epochs=15"],
    "lp_ft": ["strategy=lp_ft", "strategy.stages.probe.epochs=5", "strategy.stages.finetune.epochs=10"],
    "share_first_k (k=2, frozen)": ["strategy=share_first_k", "strategy.stages.train.epochs=15"],
}


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_").replace("__", "_")


def commands(out: Path) -> list[list[str]]:
    """The study's ``transferlab train -m`` commands, pretraining first."""
    pre = out / "pretrain"
    cmds = [
        [
            "transferlab",
            "train",
            "-m",
            "experiment=pretrain_digits04",
            f"seed={SEEDS}",
            *COMMON,
            f"hydra.sweep.dir={pre}",
            "hydra.sweep.subdir=seed${seed}",
        ],
    ]
    for label, overrides in VARIANTS.items():
        cmds.append(
            [
                "transferlab",
                "train",
                "-m",
                "experiment=transfer_digits59",
                f"backbone.weights={pre}/seed${{seed}}",
                *overrides,
                f"data.shots_per_class={SHOTS}",
                f"seed={SEEDS}",
                *COMMON,
                f"hydra.sweep.dir={out / _slug(label)}",
            ]
        )
    return cmds


def summarize(out: Path) -> list[dict]:
    """Mean ± std of test accuracy over seeds, per variant and label budget."""
    rows = []
    for label in VARIANTS:
        cells: dict[str, list[tuple[float, float]]] = {}
        for metrics_file in sorted((out / _slug(label)).glob("*/metrics.json")):
            cfg = yaml.safe_load((metrics_file.parent / "config.yaml").read_text())
            shots = cfg["data"]["shots_per_class"]
            key = "all" if shots is None else str(shots)
            final = json.loads(metrics_file.read_text())["final"]
            cells.setdefault(key, []).append((final["test/acc"], final["val/acc"]))
        for shots in ("5", "20", "all"):
            pairs = cells.get(shots, [])
            if pairs:
                accs, vals = [p[0] for p in pairs], [p[1] for p in pairs]
                rows.append(
                    {
                        "strategy": label,
                        "shots_per_class": shots,
                        "seeds": len(accs),
                        "test_acc_mean": statistics.mean(accs),
                        "test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                        "val_acc_mean": statistics.mean(vals),
                    }
                )
    return rows


def chosen_on_validation(rows: list[dict]) -> list[str]:
    """Per label budget, the strategy with the best mean validation accuracy and its test accuracy beside it.

    The choice is made on validation data only: choosing on the test column above would bias the chosen
    strategy's test score upwards.
    """
    lines = ["| labels | chosen on val/acc | its val/acc | its test/acc (not used to choose) |", "|---|---|---|---|"]
    for budget in ("5", "20", "all"):
        candidates = [r for r in rows if r["shots_per_class"] == budget]
        if candidates:
            top = max(r["val_acc_mean"] for r in candidates)
            tied = [r for r in candidates if top - r["val_acc_mean"] <= 1e-9]  # the same count of correct samples
            name = f"{budget} shots/class" if budget != "all" else "all labels"
            tests = " / ".join(f"{r['test_acc_mean']:.3f} ± {r['test_acc_std']:.3f}" for r in tied)
            chosen = " = ".join(r["strategy"] for r in tied)
            lines.append(f"| {name} | {chosen} | {top:.3f} | {tests} (n={tied[0]['seeds']}) |")
    return lines


def write_tables(rows: list[dict], cmds: list[list[str]]) -> None:
    """``results.csv``, ``results.md`` and ``commands.txt`` next to this script."""
    with (HERE / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    budgets = ("5", "20", "all")
    lines = [
        "| strategy | " + " | ".join(f"{b} shots/class" if b != "all" else "all labels" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for label in VARIANTS:
        cells = []
        for b in budgets:
            hit = [r for r in rows if r["strategy"] == label and r["shots_per_class"] == b]
            cells.append(
                f"{hit[0]['test_acc_mean']:.3f} ± {hit[0]['test_acc_std']:.3f} (n={hit[0]['seeds']})" if hit else "–"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    chosen = chosen_on_validation(rows)
    (HERE / "results.md").write_text(
        "# Digits 0–4 → 5–9: test accuracy, mean ± std over seeds\n\n"
        + "\n".join(lines)
        + "\n\n## The strategy chosen on validation accuracy, per label budget\n\n"
        + "\n".join(chosen)
        + "\n"
    )
    (HERE / "commands.txt").write_text("\n".join(shlex.join(c) for c in cmds) + "\n")


def main() -> None:
    """Run the sweeps (unless ``--summarize``) and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summarize", action="store_true", help="only rebuild the tables")
    parser.add_argument("--out", type=Path, default=Path("outputs/digits_transfer"), help="job output root")
    args = parser.parse_args()
    cmds = commands(args.out)
    if not args.summarize:
        for cmd in cmds:
            print("+", shlex.join(cmd), flush=True)
            subprocess.run(cmd, check=True)
    rows = summarize(args.out)
    if not rows:
        sys.exit(f"no finished jobs under {args.out}")
    write_tables(rows, cmds)
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()
