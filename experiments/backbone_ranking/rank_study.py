"""Backbone ranking study, the ranking side: rank the zoo, time it against fine-tuning, score the estimators.

Run after ``study.py`` (which writes the data, the pretrained checkpoints and the LP-FT ground truth), from the
repository root, on an otherwise idle machine (the timings are the point):

    python experiments/backbone_ranking/rank_study.py                    # rank, timing, evaluate
    python experiments/backbone_ranking/rank_study.py --phase evaluate   # only rebuild the tables

* ``rank``: one ``transferlab rank`` per task over all 8 candidates, with a fresh feature cache (every
  feature is computed) and the task's LP-FT sweeps as ``ranking.runs`` (their test accuracy beside the scores).
* ``timing``: each candidate fine-tuned once (seed 0) with the **default recipe** (``strategy=auto``), one job
  at a time, with its own fresh feature cache; its in-process seconds (``metrics.json``) against the
  candidate's ranking seconds (``ranking.csv``: building the backbone and data, the features, every estimator).
* ``evaluate``: Kendall τ (τ-b, scipy) and the top-1 hit of each estimator's ranking against the mean LP-FT
  test accuracy over seeds 0–2, per task; writes ``ranking.md`` and ``ranking.csv`` next to this file.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study import HERE, SEEDS, _machine, collect, sweep_dir, tasks, zoo

ESTIMATORS = ("logme", "leep", "nce", "hscore", "gbc")
QUIET = ["callbacks=none", "trainer.enable_progress_bar=false", "logger=none"]


def _run(cmd: list[str], log: Path) -> tuple[bool, float]:
    line = shlex.join(cmd)
    print("+", line, flush=True)
    with (HERE / "commands.txt").open("a") as f:
        f.write(line + "\n")
    start = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    return code == 0, time.perf_counter() - start


def phase_rank(out: Path) -> None:
    """One timed ``transferlab rank`` per task over the whole zoo (fresh cache: every feature computed)."""
    for task, overrides in tasks(out).items():
        where = out / "rank" / task
        if (where / "ranking.csv").is_file():
            print(f"skip (done): {where}", flush=True)
            continue
        where.parent.mkdir(parents=True, exist_ok=True)
        candidates = ",".join(c for c, _ in zoo(out).values())
        cmd = ["transferlab", "rank", f"candidates=[{candidates}]", *overrides, *QUIET,
               f"feature_cache.dir={out / 'rank_cache' / task}", f"ranking.runs={out / 'finetune' / task}",
               f"ranking.out={where}"]  # fmt: skip
        ok, wall = _run(cmd, out / "rank" / f"{task}.log")
        if not ok:
            sys.exit(f"rank failed: {out / 'rank' / f'{task}.log'}")
        (where / "wall.json").write_text(json.dumps({"seconds": wall}) + "\n")


def phase_timing(out: Path) -> None:
    """Each candidate fine-tuned once with the default recipe, one job at a time."""
    for task, overrides in tasks(out).items():
        for short, (_, backbone) in zoo(out).items():
            run_dir = out / "timing" / task / short
            if (run_dir / "metrics.json").is_file():
                print(f"skip (done): {run_dir}", flush=True)
                continue
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            cmd = ["transferlab", "train", *overrides, *backbone, "seed=0", *QUIET, f"hydra.run.dir={run_dir}",
                   f"feature_cache.dir={out / 'timing_cache' / task / short}"]  # fmt: skip
            ok, wall = _run(cmd, run_dir.parent / f"{short}.log")
            if not ok:
                sys.exit(f"fine-tune failed: {run_dir}")
            (run_dir / "wall.json").write_text(json.dumps({"seconds": wall}) + "\n")


def _ranking(out: Path, task: str) -> dict[str, dict[str, str]]:
    strings = {c: s for s, (c, _) in zoo(out).items()}
    rows = csv.DictReader((out / "rank" / task / "ranking.csv").open())
    return {strings[r["candidate"]]: r for r in rows}


def _truth(out: Path, task: str) -> dict[str, float]:
    rows = [r for r in collect(out) if r["task"] == task]
    return {s: statistics.fmean(r["test_acc"] for r in rows if r["candidate"] == s) for s in zoo(out)}


def _estimator_lines(out: Path) -> tuple[list[str], list[dict]]:
    lines = ["| task | estimator | candidates scored | Kendall τ | p | top-1 (its LP-FT acc) | best (acc) | hit |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    records = []
    for task in tasks(out):
        ranking, truth = _ranking(out, task), _truth(out, task)
        best = max(truth, key=truth.get)
        for estimator in ESTIMATORS:
            scored = {s: float(r[estimator]) for s, r in ranking.items() if r[estimator] not in ("", None)}
            names = sorted(scored)
            tau, p = kendalltau([scored[s] for s in names], [truth[s] for s in names])
            top = max(scored, key=scored.get)
            hit = top == best
            records.append({"task": task, "estimator": estimator, "n": len(names), "kendall_tau": round(tau, 4),
                            "p": round(p, 4), "top1": top, "top1_acc": round(truth[top], 4), "best": best,
                            "best_acc": round(truth[best], 4), "hit": hit})  # fmt: skip
            lines.append(f"| {task} | {estimator} | {len(names)} | **{tau:.3f}** | {p:.3f} | {top} ({truth[top]:.3f}) "
                         f"| {best} ({truth[best]:.3f}) | {'yes' if hit else 'no'} |")  # fmt: skip
    return lines, records


def _seed_agreement(out: Path) -> list[str]:
    """Kendall τ between the LP-FT accuracies of two seeds: how far the ground truth itself reproduces."""
    lines = ["| task | τ seed 0 vs 1 | τ seed 0 vs 2 | τ seed 1 vs 2 | mean |", "|---|---|---|---|---|"]
    rows = collect(out)
    for task in tasks(out):
        acc = {(r["candidate"], r["seed"]): r["test_acc"] for r in rows if r["task"] == task}
        names = sorted(zoo(out))
        pairs = [(a, b) for i, a in enumerate(SEEDS) for b in SEEDS[i + 1 :]]
        taus = [kendalltau([acc[n, a] for n in names], [acc[n, b] for n in names])[0] for a, b in pairs]
        lines.append(f"| {task} | " + " | ".join(f"{t:.3f}" for t in taus) + f" | {statistics.fmean(taus):.3f} |")
    return lines


def _score_lines(out: Path, task: str) -> list[str]:
    ranking, truth = _ranking(out, task), _truth(out, task)
    lines = ["| candidate | LP-FT test acc (3 seeds) | " + " | ".join(ESTIMATORS) + " | rank s | default fine-tune s |",
             "|---|---|" + "---|" * len(ESTIMATORS) + "---|---|"]  # fmt: skip
    for short in sorted(truth, key=truth.get, reverse=True):
        r = ranking[short]
        cells = [f"{float(r[e]):.4g} ({r[e + '_rank']})" if r[e] else "–" for e in ESTIMATORS]
        tuned = out / "timing" / task / short / "metrics.json"
        ft = f"{json.loads(tuned.read_text())['seconds']:.1f}" if tuned.is_file() else "–"
        lines.append(
            f"| {short} | {truth[short]:.3f} | " + " | ".join(cells) + f" | {float(r['seconds']):.2f} | {ft} |"
        )
    return lines


def _timing_lines(out: Path) -> list[str]:
    lines = ["| task | ranking s (8 candidates, in process) | rank command wall s | default-recipe fine-tunes s "
             "(8, in process) | their wall s | ratio (rank / fine-tune) | worst candidate ratio | LP-FT sweep "
             "replaced (24 jobs, wall s) |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for task in tasks(out):
        ranking = _ranking(out, task)
        rank_s = sum(float(r["seconds"]) for r in ranking.values())
        rank_wall = json.loads((out / "rank" / task / "wall.json").read_text())["seconds"]
        tuned = {s: json.loads((out / "timing" / task / s / "metrics.json").read_text())["seconds"] for s in ranking}
        walls = sum(json.loads((out / "timing" / task / s / "wall.json").read_text())["seconds"] for s in ranking)
        worst = max(float(ranking[s]["seconds"]) / tuned[s] for s in ranking)
        sweep = sum(json.loads((sweep_dir(out, task, s) / "wall.json").read_text())["seconds"] for s in ranking)
        lines.append(f"| {task} | {rank_s:.1f} | {rank_wall:.1f} | {sum(tuned.values()):.1f} | {walls:.1f} | "
                     f"1/{sum(tuned.values()) / rank_s:.0f} | 1/{1 / worst:.0f} | {sweep:.0f} |")  # fmt: skip
    return lines


def phase_evaluate(out: Path) -> None:
    """Kendall τ and top-1 per estimator and task, the timings; ``ranking.md`` and ``ranking.csv``."""
    lines, records = _estimator_lines(out)
    with (HERE / "ranking.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    text = ["# Backbone ranking: estimators against LP-FT fine-tuning", "",
            f"Machine: {_machine()}; seeds {', '.join(map(str, SEEDS))} of fine-tuning.", "",
            "## Rank correlation with fine-tuned test accuracy", "", *lines, "",
            "The ground truth's own reproducibility: Kendall τ between two seeds' LP-FT test accuracies of the "
            "8 candidates.", "", *_seed_agreement(out)]  # fmt: skip
    for task in tasks(out):
        text += ["", f"## {task}: scores (rank) and fine-tuning", "", *_score_lines(out, task)]
    text += ["", "## Cost: ranking against fine-tuning", "", *_timing_lines(out)]
    (HERE / "ranking.md").write_text("\n".join(text) + "\n")
    print((HERE / "ranking.md").read_text())


PHASES: dict[str, Callable[[Path], None]] = {"rank": phase_rank, "timing": phase_timing, "evaluate": phase_evaluate}


def main() -> None:
    """Run one phase, or every phase in order."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=[*PHASES, "all"], default="all")
    parser.add_argument("--out", type=Path, default=Path("outputs/backbone_ranking"), help="job output root")
    args = parser.parse_args()
    for name, phase in PHASES.items():
        if args.phase in (name, "all"):
            print(f"== phase {name}", flush=True)
            phase(args.out.resolve())


if __name__ == "__main__":
    main()
