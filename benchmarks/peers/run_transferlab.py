"""Peer 4: transferlab itself, through its CLI, on the regimes of the comparison (run in the project venv).

Each run is ``nice -n 19 transferlab train <regime overrides> seed=S <extra overrides>`` with one intra-op thread
(``OMP_NUM_THREADS=1``), its own output root (so no feature or decoded-image cache survives from an earlier run)
and its run dir at ``work/runs/<tool>/<regime>_seed<S>/run``. From the run's ``metrics.json`` it keeps
``final["test/acc"]``, ``final["val/acc"]``, ``seconds`` (training) and every stage's test/val accuracy (the
``lp_ft`` probe stage's test row is the linear-probe row of the table), and it checks that the run's
``split.json`` holds exactly the sample ids of the exported ``.npz`` the peers read.

Which transferlab: by default a snapshot of ``src/`` and ``conf/`` at ``HEAD``'s last commit that changed them
(``git archive`` into ``work/transferlab_src/<commit>/``, put first on ``PYTHONPATH``), because the checkout is
shared and its working tree may hold someone's unfinished edits; ``--source <rev>`` takes another revision,
``--source tree`` the working tree as it is. The commit is recorded with every result.

Extra overrides after ``--`` make another transferlab row: the tool is named after them.

Usage:
    python benchmarks/peers/run_transferlab.py                                  # lp_ft, every regime × seed
    python benchmarks/peers/run_transferlab.py --regimes digits_5shot --seeds 0
    python benchmarks/peers/run_transferlab.py -- strategy=finetune             # tool "transferlab[strategy=finetune]"
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from regimes import REGIMES, SEEDS, WORK, split_file

RESULTS = WORK / "results"
REPO = Path(__file__).resolve().parents[2]


def tool_name(extra: list[str]) -> str:
    """``transferlab`` for the default recipe, ``transferlab[<overrides>]`` for any other."""
    return "transferlab" if not extra else f"transferlab[{' '.join(extra)}]"


def slug(tool: str) -> str:
    """A folder name for a tool that is also a valid Hydra override value (no ``=``, brackets or spaces)."""
    return "".join(c if c.isalnum() or c in "._-" else "-" if c == "=" else "_" for c in tool).strip("_")


def executable() -> str:
    """The ``transferlab`` command: the project venv's, else the one on PATH."""
    local = REPO / ".venv" / "bin" / "transferlab"
    found = str(local) if local.is_file() else shutil.which("transferlab")
    if found is None:
        raise SystemExit("no 'transferlab' command: activate the project venv (. .venv/bin/activate)")
    return found


def thread_env(threads: int) -> dict[str, str]:
    """The environment with every thread pool capped at ``threads``."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    return env


def same_split(run_dir: Path, regime: str, seed: int) -> bool | None:
    """Whether the run trained, validated and tested on the exported ids (``None``: nothing exported)."""
    npz = split_file(regime, seed)
    if not npz.is_file():
        return None
    members = json.loads((run_dir / "split.json").read_text())["members"]
    with np.load(npz, allow_pickle=False) as z:
        return all(list(map(str, z[f"ids_{s}"])) == members[s] for s in ("train", "val", "test"))


def git(*args: str) -> str:
    """Output of a git command in the repository."""
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def resolve_source(source: str) -> str:
    """``tree``, or the last commit at or before revision ``source`` that changed ``src/`` or ``conf/``."""
    return source if source == "tree" else git("log", "-1", "--format=%h", "--abbrev=12", source, "--", "src", "conf")


def source_env(source: str, threads: int) -> tuple[dict[str, str], str]:
    """The environment that runs transferlab from ``source`` (``tree`` or a git revision), and what it runs.

    Returns:
        The environment, and the commit (``<HEAD>+working-tree`` for ``tree``).
    """
    env = thread_env(threads)
    if source == "tree":
        return env, f"{git('rev-parse', '--short=12', 'HEAD')}+working-tree"
    commit = resolve_source(source)
    snapshot = WORK / "transferlab_src" / commit
    if not (snapshot / "conf" / "train.yaml").is_file():
        snapshot.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "src", "conf"], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive.stdout, check=True)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(snapshot / "src"), env.get("PYTHONPATH")) if p)
    return env, commit


def versions() -> dict[str, str]:
    """Versions of transferlab and what it trains with, in this (the project's) venv."""
    names = ("transferlab", "torch", "torchvision", "timm", "lightning", "numpy")
    return {n: importlib.metadata.version(n) for n in names}


def run_one(
    regime: str, seed: int, extra: list[str], threads: int, force: bool, source: str = "HEAD"
) -> dict[str, Any]:
    """Train one regime × seed (or reuse a finished run unless ``force``) and write its result JSON.

    Args:
        regime: A key of :data:`regimes.REGIMES`.
        seed: The run's seed (splits, head init, shuffling).
        extra: Overrides added after the regime's (they name the tool).
        threads: Intra-op threads.
        force: Train again even when the result file exists.
        source: A git revision (its snapshot runs) or ``tree`` (the working tree); see the module docstring.
    """
    tool = tool_name(extra)
    out = RESULTS / slug(tool) / f"{regime}_seed{seed}.json"
    if out.is_file() and not force:
        print(f"{tool} {regime} seed {seed}: kept {out}")
        return json.loads(out.read_text())
    base = WORK / "runs" / slug(tool) / f"{regime}_seed{seed}"
    if base.exists():
        shutil.rmtree(base)  # a run dir is never reused: transferlab claims a fresh one
    base.mkdir(parents=True)
    run_dir = base / "run"
    overrides = [*REGIMES[regime], f"seed={seed}", f"paths.output_root={base / 'root'}", f"hydra.run.dir={run_dir}"]
    cmd = ["nice", "-n", "19", executable(), "train", *overrides, *extra]
    env, commit = source_env(source, threads)
    start = time.perf_counter()
    with open(base / "stdout.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}; see {base / 'stdout.log'}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    stages = {
        name: {
            "test_acc": stage.get("test/acc"),
            "val_acc": stage.get("val/acc"),
            "epochs": stage.get("epochs"),
            "best_epoch": stage.get("best_epoch"),
            "seconds": stage.get("seconds"),
        }
        for name, stage in metrics["stages"].items()
    }
    record = {
        "tool": tool,
        "regime": regime,
        "seed": seed,
        "test_acc": metrics["final"]["test/acc"],
        "val_acc": metrics["final"]["val/acc"],
        "train_s": metrics["seconds"],
        "wall_s": round(wall, 2),
        "epochs": sum(s["epochs"] or 0 for s in stages.values()),
        "stages": stages,
        "selection": metrics.get("selection"),  # strategy.final=best: which stage's weights the run ended with
        "same_split_as_export": same_split(run_dir, regime, seed),
        "command": " ".join(cmd[3:]),
        "transferlab_commit": commit,
        "run_dir": str(run_dir.relative_to(REPO)),
        "versions": versions(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("tool", "regime", "seed", "test_acc", "val_acc", "wall_s")}))
    return record


def main() -> None:
    """Run the requested regimes × seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Extra overrides go after --.")
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="train again even where a result exists")
    parser.add_argument("--source", default="HEAD", help="git revision to snapshot, or 'tree' (the working tree)")
    args, extra = parser.parse_known_args()
    extra = [e for e in extra if e != "--"]
    source = resolve_source(args.source)  # once: every run of the call trains the same transferlab
    for regime in args.regimes:
        for seed in args.seeds:
            run_one(regime, seed, extra, args.threads, args.force, source)


if __name__ == "__main__":
    main()
