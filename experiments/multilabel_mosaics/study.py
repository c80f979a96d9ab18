"""Rare labels in a multi-label task: no correction vs class weights, pos_weight, the balanced sampler, focal loss.

The task (``make_data.py``): 2×2 mosaics of crops of six bundled photos, labelled with the photos each mosaic
was cut from and ``grey`` when a tile was turned grey; labels range from 78 % of images (cat) to 8 % (flower).
The backbone is the pretrained EfficientNet-Lite0 (weights from its pip package), frozen: a linear multi-label
head trains on its features (the feature cache computes them once per seed), so every arm sees the same
features and differs only in how the head learns. Each arm runs with 3 seeds; every metric is measured on the
fixed test split of the CSV, the epoch is chosen on ``val/map`` (the monitored metric), thresholds are tuned
on val and applied to test.

Run from the repository root (about 10 minutes on 2 CPU cores):

    python experiments/multilabel_mosaics/study.py              # data, every sweep, then the tables
    python experiments/multilabel_mosaics/study.py --summarize  # only rebuild the tables from existing runs

Job outputs go to ``outputs/multilabel_mosaics/`` (git-ignored); ``results.md``, ``results.csv`` and
``commands.txt`` are written next to this file.
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

HERE = Path(__file__).resolve().parent
SEEDS = "0,1,2"
#: arm → overrides; everything else is shared (COMMON)
ARMS: dict[str, list[str]] = {
    "none (plain BCE)": [],
    "class weights (auto)": ["task.class_weights=auto"],
    "pos_weight (auto)": ["task.pos_weight=auto"],
    "balanced sampler": ["data.sampler=balanced"],
    "focal loss (γ=2)": ["task=focal"],
}
METRICS = ("test/macro_f1", "test/map", "test/micro_f1", "val/macro_f1", "val/map")
RARE = ("flower", "grey", "china")


def common(data_dir: Path) -> list[str]:
    """The overrides every arm shares."""
    return [
        "data=label_file",
        f"data.file={data_dir / 'labels.csv'}",
        "data.label_column=labels",
        "data.label_delimiter=' '",
        "data.split_column=split",
        "data.image_size=128",
        "data.batch_size=32",
        "data.augment=null",
        "backbone=efficientnet_lite0",
        "strategy=feature_extraction",
        "strategy.stages.probe.epochs=30",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        "hydra/launcher=parallel",
        f"seed={SEEDS}",
    ]


def _slug(label: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in label).strip("_").replace("__", "_")


def commands(out: Path) -> list[list[str]]:
    """One ``transferlab train -m`` sweep (over seeds) per arm."""
    data_dir = out / "data"
    return [
        ["transferlab", "train", "-m", *common(data_dir), *overrides, f"hydra.sweep.dir={out / _slug(label)}"]
        for label, overrides in ARMS.items()
    ]


def _per_label_f1(metrics: dict) -> dict[str, float]:
    details = metrics.get("test_details") or {}
    per_label = details.get("per_label") or {}
    return {name: float(row["f1"]) for name, row in per_label.items() if isinstance(row, dict) and "f1" in row}


def summarize(out: Path) -> list[dict]:
    """Mean ± std over seeds of every metric, per arm, with the rare labels' test F1."""
    rows = []
    for label in ARMS:
        runs = [json.loads(p.read_text()) for p in sorted((out / _slug(label)).glob("*/metrics.json"))]
        if not runs:
            continue
        row: dict = {"arm": label, "seeds": len(runs)}
        for name in METRICS:
            values = [float(r["final"][name]) for r in runs if r["final"].get(name) is not None]
            row[f"{name} mean"] = statistics.mean(values) if values else float("nan")
            row[f"{name} std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        for name in RARE:
            values = [f[name] for r in runs if name in (f := _per_label_f1(r))]
            row[f"test F1 {name}"] = statistics.mean(values) if values else float("nan")
        rows.append(row)
    return rows


def write_tables(rows: list[dict], cmds: list[list[str]]) -> None:
    """``results.csv``, ``results.md`` and ``commands.txt`` next to this script."""
    with (HERE / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shown = ("val/macro_f1", "test/macro_f1", "test/map", "test/micro_f1")
    head = "| arm | " + " | ".join(shown) + " | " + " | ".join(f"test F1 {n}" for n in RARE) + " |"
    lines = [head, "|---|" + "---|" * (len(shown) + len(RARE))]
    for r in rows:
        cells = [f"{r[f'{m} mean']:.3f} ± {r[f'{m} std']:.3f}" for m in shown]
        cells += [f"{r[f'test F1 {n}']:.3f}" for n in RARE]
        lines.append(f"| {r['arm']} (n={r['seeds']}) | " + " | ".join(cells) + " |")
    best = max(rows, key=lambda r: r["val/macro_f1 mean"])
    chosen = (
        f"Chosen on validation macro-F1 (never on test): **{best['arm']}** — val/macro_f1 "
        f"{best['val/macro_f1 mean']:.3f}, its test/macro_f1 {best['test/macro_f1 mean']:.3f} ± "
        f"{best['test/macro_f1 std']:.3f}."
    )
    (HERE / "results.md").write_text(
        "# Multi-label mosaics: imbalance corrections, mean ± std over seeds\n\n"
        + "\n".join(lines)
        + "\n\n"
        + chosen
        + "\n"
    )
    (HERE / "commands.txt").write_text(
        "python experiments/multilabel_mosaics/make_data.py --out outputs/multilabel_mosaics/data\n"
        + "\n".join(shlex.join(c) for c in cmds)
        + "\n"
    )


def main() -> None:
    """Make the data, run the sweeps (unless ``--summarize``) and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summarize", action="store_true", help="only rebuild the tables")
    parser.add_argument("--out", type=Path, default=Path("outputs/multilabel_mosaics"), help="job output root")
    args = parser.parse_args()
    out = args.out.resolve()
    cmds = commands(out)
    if not args.summarize:
        subprocess.run([sys.executable, str(HERE / "make_data.py"), "--out", str(out / "data")], check=True)
        for cmd in cmds:
            print("+", shlex.join(cmd), flush=True)
            subprocess.run(cmd, check=True)
    rows = summarize(out)
    if not rows:
        sys.exit(f"no finished jobs under {out}")
    write_tables(rows, cmds)
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()
