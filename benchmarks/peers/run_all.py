"""Run the whole peer comparison and write ``benchmarks/peers/results.json`` and the Markdown table.

Run it in the project venv after ``setup_venvs.sh``. In order: the photo folder (``make_photos.py``) and the
exported splits (``export_splits.py``) when missing, every venv's weight check, then the matrix, sequentially,
regime by regime (smallest first), seed by seed, tool by tool: transferlab (its CLI, ``run_transferlab.py``),
fastai, finetuning-scheduler and the hand-written timm loop (each in its own venv). Every run is
``nice -n 19`` with one intra-op thread. A run whose result file exists is kept (``--force`` trains it again),
so an interrupted matrix continues where it stopped; ``--table-only`` only collects the results that exist
(every ``transferlab[...]`` variant made with ``run_transferlab.py -- <overrides>`` included).

Usage:
    python benchmarks/peers/run_all.py
    python benchmarks/peers/run_all.py --regimes digits_5shot --seeds 0      # the smoke check
    python benchmarks/peers/run_all.py --table-only
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from regimes import DESCRIPTIONS, EPOCHS, PHOTOS, REGIMES, SEEDS, SPLITS, WORK, split_file
from run_transferlab import RESULTS, resolve_source, run_one, thread_env

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
#: Peer tool → (venv, script).
PEERS = {
    "fastai": ("fastai", "peer_fastai.py"),
    "finetuning_scheduler": ("fts", "peer_fts.py"),
    "timm_loop": ("timm", "peer_timm.py"),
}
TOOLS = ("transferlab", *PEERS)
MACHINE = "2-core Intel Xeon VM (24 GiB), no GPU; shared with other users, every run under nice -n 19"


def run_peer(tool: str, regime: str, seed: int, threads: int, force: bool) -> None:
    """Run one peer on one regime × seed in its venv (kept when its result exists, unless ``force``)."""
    out = RESULTS / tool / f"{regime}_seed{seed}.json"
    if out.is_file() and not force:
        print(f"{tool} {regime} seed {seed}: kept {out}")
        return
    venv, script = PEERS[tool]
    python = VENVS / venv / "bin" / "python"
    cmd = ["nice", "-n", "19", str(python), str(HERE / script), "--data", str(split_file(regime, seed))]
    cmd += ["--out", str(out), "--seed", str(seed), "--threads", str(threads)]
    if tool == "finetuning_scheduler":
        cmd += ["--root", str(WORK / "runs" / tool / f"{regime}_seed{seed}")]
    log = WORK / "logs" / tool / f"{regime}_seed{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=thread_env(threads), cwd=HERE.parents[1])
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"FAILED {tool} {regime} seed {seed} (exit {proc.returncode}): see {log}", flush=True)
        return
    record = json.loads(out.read_text())
    record["wall_s"] = round(wall, 2)
    record["command"] = " ".join(cmd[3:])
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("tool", "regime", "seed", "test_acc", "val_acc", "wall_s")}), flush=True)


def weight_checks() -> dict[str, Any]:
    """Every venv's ImageNet top-1 on ``chelsea`` next to transferlab's own (from the export's index)."""
    checks: dict[str, Any] = {}
    index = SPLITS / "index.json"
    if index.is_file():
        checks["transferlab"] = json.loads(index.read_text()).get("transferlab_chelsea")
    for venv in sorted({v for v, _ in PEERS.values()}):
        python = VENVS / venv / "bin" / "python"
        proc = subprocess.run([str(python), str(HERE / "lite0.py"), "--check"], capture_output=True, text=True)
        checks[venv] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else proc.stderr[-500:]
    top1 = {k: v.get("top1") if isinstance(v, dict) else None for k, v in checks.items()}
    checks["all_equal"] = len(set(top1.values())) == 1 and None not in top1.values()
    return checks


def collect() -> list[dict[str, Any]]:
    """Every result file, in table order (regime, then tool, then seed)."""
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*/*.json"))]
    order = {r: i for i, r in enumerate(REGIMES)}
    return sorted(runs, key=lambda r: (order.get(r["regime"], 99), r["tool"], r["seed"]))


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def _tool_order(tool: str) -> tuple[float, str]:
    """Table order: transferlab, its variants (``transferlab[...]``), then the peers."""
    if tool in TOOLS:
        return TOOLS.index(tool), tool
    return (0.5 if tool.startswith("transferlab") else len(TOOLS)), tool


def table(runs: list[dict[str, Any]]) -> str:
    """The Markdown table: per regime and tool, test accuracy mean ± std over the seeds, val accuracy, seconds."""
    lines = [
        "| regime | tool | seeds | test acc (mean ± std) | val acc | wall s (mean) | train s (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for regime in [r for r in REGIMES if any(run["regime"] == r for run in runs)]:
        here = [r for r in runs if r["regime"] == regime]
        tools = sorted({r["tool"] for r in here}, key=_tool_order)
        rows: list[tuple[str, list[dict[str, Any]], str, str]] = []
        for tool in tools:
            mine = [r for r in here if r["tool"] == tool]
            rows.append((tool, mine, "test_acc", "val_acc"))
            if tool == "transferlab" and all("probe" in r.get("stages", {}) for r in mine):
                rows.append(("transferlab, its lp_ft probe stage alone (2 epochs)", mine, "probe", "probe"))
        for name, mine, test_key, val_key in rows:
            if test_key == "probe":
                test = [r["stages"]["probe"]["test_acc"] for r in mine]
                val = [r["stages"]["probe"]["val_acc"] for r in mine]
                wall, train = "–", f"{statistics.mean(r['stages']['probe']['seconds'] for r in mine):.1f}"
            else:
                test, val = [r[test_key] for r in mine], [r[val_key] for r in mine]
                wall = f"{statistics.mean(r.get('wall_s', 0.0) for r in mine):.1f}"
                train = f"{statistics.mean(r.get('train_s', 0.0) for r in mine):.1f}"
            seeds = ",".join(str(r["seed"]) for r in mine)
            lines.append(f"| {regime} | {name} | {seeds} | {_mean_std(test)} | {_mean_std(val)} | {wall} | {train} |")
    return "\n".join(lines)


def main() -> None:
    """Prepare, run the matrix, write results.json, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="train again even where a result exists")
    parser.add_argument("--table-only", action="store_true", help="only collect existing results")
    args = parser.parse_args()
    here = [sys.executable]
    if not args.table_only:
        if not PHOTOS.is_dir():
            subprocess.run([*here, str(HERE / "make_photos.py"), "--out", str(PHOTOS)], check=True)
        missing = [s for s in args.seeds if any(not split_file(r, s).is_file() for r in args.regimes)]
        if missing:
            cmd = [*here, str(HERE / "export_splits.py"), "--regimes", *args.regimes, "--seeds", *map(str, missing)]
            subprocess.run(cmd, check=True, env=thread_env(args.threads))
        source = resolve_source("HEAD")  # once: every transferlab run of the matrix trains the same code
        for regime in args.regimes:
            for seed in args.seeds:
                for tool in args.tools:
                    if tool == "transferlab":
                        run_one(regime, seed, [], args.threads, args.force, source)
                    else:
                        run_peer(tool, regime, seed, args.threads, args.force)
    runs = collect()
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": MACHINE,
        "threads": args.threads,
        "epochs": EPOCHS,
        "regimes": {r: {"description": DESCRIPTIONS[r], "transferlab_overrides": REGIMES[r]} for r in REGIMES},
        "weight_check": weight_checks(),
        "versions": {r["tool"]: r["versions"] for r in runs},
        "runs": [{k: v for k, v in r.items() if k != "versions"} for r in runs],
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(runs)
    (WORK / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
