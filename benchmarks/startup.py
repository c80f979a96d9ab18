"""Start-up time: from the command to the first training batch, split into phases, vs ``import torch, lightning``.

Every measurement is a fresh subprocess, timed from just before it is spawned (``time.time()`` in this
process) to a timestamp it writes itself; the variants alternate in one run (A, B, C, D, A, B, …):

* ``python``: ``python -c "import time; print(time.time())"`` (the bare interpreter).
* ``import torch, lightning``: the same after ``import torch, lightning`` (the baseline).
* ``transferlab train``: ``python -m transferlab.cli.main train <overrides>`` with a callback
  (``benchmarks.common.FirstBatchStamp``, given as ``+callbacks.extra.first...``) that writes the time at the
  first ``on_train_batch_start`` and ends the process there (the rest of the run is not start-up).
* ``transferlab train (probed)``: the same command run through ``python -m benchmarks.startup --child``,
  which stamps phase boundaries on the way without changing what runs or in which order: the start of the
  Hydra task function (config composed and checked by the CLI's preflight), the end of the engine's import, and
  the returns of the engine's ``assemble`` and ``build_trainer``. Its total should match the plain command's.

The overrides keep the default backbone (efficientnet_lite0, packaged weights), data (digits), logger
(TensorBoard), callbacks and progress bar; ``strategy=finetune`` so the first batch is not preceded by the
feature cache's one-off computation (``--strategy lp_ft`` measures the default strategy, cache included).

Usage (from the repository root)::

    python -m benchmarks.startup            # recorded numbers (≈ 1–2 min)
    python -m benchmarks.startup --quick    # smoke run (< 1 min)
"""

from __future__ import annotations

# Only the standard library at module level: the --child mode must not import anything before it is timed.
import argparse
import importlib.abc
import importlib.machinery
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ENGINE = "transferlab.run.engine"
# Phase boundaries stamped by the probe, in order, with the label of the phase that ends there.
PHASES = (
    ("child_start", "python start (interpreter, site, spawn)"),
    ("task_start", "CLI preflight (imports torch + lightning, compose, parse, claim dir) + Hydra set-up"),
    ("engine_imported", "imports: the rest of the transferlab engine"),
    ("module_built", "assemble: backbone (weights load) + data setup + module + plan"),
    ("trainer_built", "logger, callbacks, Trainer() (build_trainer)"),
    ("first_batch", "Trainer.fit set-up -> first training batch"),
)


class _Stamps:
    """Phase stamps of the probed child process, appended to a file as ``name time`` lines."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen: set[str] = set()

    def __call__(self, name: str) -> None:
        if name in self.seen:
            return
        self.seen.add(name)
        with open(self.path, "a") as f:
            f.write(f"{name} {time.time():.6f}\n")


def _wrap(module: ModuleType, attr: str, after: Callable[[], None]) -> bool:
    original = getattr(module, attr, None)
    if original is None:
        return False

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        after()
        return out

    setattr(module, attr, wrapper)
    return True


class _EngineHook(importlib.abc.MetaPathFinder):
    """Stamps the end of the engine's import and wraps its build functions, without importing anything early."""

    def __init__(self, stamp: _Stamps) -> None:
        self.stamp = stamp

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != ENGINE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module
        stamp = self.stamp

        def exec_and_instrument(module: ModuleType) -> None:
            exec_module(module)
            stamp("engine_imported")
            for attr, name in (
                ("assemble", "module_built"),
                ("build_trainer", "trainer_built"),
            ):
                if not _wrap(module, attr, lambda name=name: stamp(name)):
                    print(f"startup probe: {ENGINE}.{attr} not found; phase {name} not stamped", file=sys.stderr)

        spec.loader.exec_module = exec_and_instrument  # type: ignore[method-assign]
        return spec


def child(stamp_file: str, argv: list[str]) -> None:
    """The probed ``transferlab`` command: stamp the phases, then run ``transferlab.cli.main.main(argv)``."""
    stamp = _Stamps(stamp_file)
    stamp("child_start")
    sys.meta_path.insert(0, _EngineHook(stamp))
    from transferlab.cli import main as cli_main

    if argv and argv[0] == "train":
        from transferlab.cli.commands import train as cli_train

        task = getattr(cli_train, "train_task", None)
        if task is not None:

            def train_task(cfg: Any) -> Any:
                stamp("task_start")
                return task(cfg)

            cli_train.train_task = train_task  # type: ignore[attr-defined]
        else:
            print("startup probe: cli.commands.train.train_task not found; no task_start stamp", file=sys.stderr)
    sys.argv = ["transferlab", *argv]
    cli_main.main(argv)


def train_overrides(run_dir: Path, stamp_file: Path, strategy: str) -> list[str]:
    """The tiny ``transferlab train`` job: 2 epochs (the warm-up must be shorter), stamp the first batch and exit."""
    epochs = [f"strategy.stages.{s}.epochs=2" for s in (["probe", "finetune"] if strategy == "lp_ft" else [strategy])]
    return [
        "train",
        f"strategy={strategy}",
        *epochs,
        f"hydra.run.dir={run_dir}",
        f"paths.output_root={run_dir.parent}",
        "+callbacks.extra.first._target_=benchmarks.common.FirstBatchStamp",
        f"+callbacks.extra.first.path={stamp_file}",
    ]


def _spawn(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return start, done


def measure_once(variant: str, tmp: Path, index: int, strategy: str, env: dict[str, str]) -> dict[str, float]:
    """Run one variant once; seconds from spawn to its end stamp (and per phase for the probe)."""
    py = sys.executable
    if variant == "python":
        start, done = _spawn([py, "-c", "import time; print(time.time())"], env)
        return {"total": float(done.stdout.split()[-1]) - start}
    if variant == "import":
        start, done = _spawn([py, "-c", "import time, torch, lightning; print(time.time())"], env)
        return {"total": float(done.stdout.split()[-1]) - start}
    first = tmp / f"first-{index}-{variant}.txt"
    args = train_overrides(tmp / f"run-{index}-{variant}", first, strategy)
    if variant == "train":
        start, _ = _spawn([py, "-m", "transferlab.cli.main", *args], env)
        return {"total": float(first.read_text()) - start}
    phases = tmp / f"phases-{index}.txt"
    start, _ = _spawn([py, "-m", "benchmarks.startup", "--child", str(phases), "--", *args], env)
    stamps = {name: float(t) for name, t in (line.split() for line in phases.read_text().splitlines())}
    stamps["first_batch"] = float(first.read_text())
    out, previous = {}, start
    for name, _ in PHASES:
        if name in stamps:
            out[name] = stamps[name] - previous
            previous = stamps[name]
    out["total"] = stamps["first_batch"] - start
    return out


def main(argv: list[str] | None = None) -> None:
    """Measure the variants alternately and print the phase table and the ratio to the import baseline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two repeats (< 1 min)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per variant (default 5, quick 2)")
    parser.add_argument("--strategy", default="finetune", help="strategy of the job (default finetune)")
    parser.add_argument("--child", metavar="STAMP_FILE", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        child(args.child, [a for a in rest if a != "--"])
        return

    from benchmarks.common import Samples, format_table, machine_line, ratio, result_line

    repeats = args.repeats or (2 if args.quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-startup-"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    print(machine_line())
    print(f"setup: {repeats} alternating runs per variant; strategy={args.strategy}, otherwise the default config")
    variants = {
        "python": "python -c 'import time; print(time.time())'",
        "import": "python -c 'import torch, lightning' (baseline)",
        "train": "python -m transferlab.cli.main train ... -> first batch",
        "probe": "the same, probed (phases below)",
    }
    totals = {v: Samples(v) for v in variants}
    phases: dict[str, Samples] = {name: Samples(name) for name, _ in PHASES}
    for r in range(repeats):
        for variant in variants:
            result = measure_once(variant, tmp, r, args.strategy, env)
            totals[variant].values.append(result["total"])
            for name in phases:
                if name in result:
                    phases[name].values.append(result[name])
            print(f"  run {r + 1}/{repeats} {variant:<7} {result['total']:6.2f} s", flush=True)
    base = totals["import"].median
    print()
    rows = [
        [label, len(totals[v].values), totals[v].median, totals[v].spread(), ratio(totals[v].median, base)]
        for v, label in variants.items()
    ]
    print(format_table(["variant", "runs", "median s", "min–max s", "÷ import torch, lightning"], rows))
    print()
    phase_rows = [[label, phases[name].median, phases[name].spread()] for name, label in PHASES if phases[name].values]
    phase_rows.append(["sum of phase medians", sum(phases[n].median for n, _ in PHASES if phases[n].values), ""])
    print(format_table(["phase of the probed run (medians)", "s", "min–max s"], phase_rows))
    shutil.rmtree(tmp, ignore_errors=True)
    print(machine_line())
    print(result_line("startup_first_batch_vs_import", ratio(totals["train"].median, base), "none: informational"))


if __name__ == "__main__":
    main()
