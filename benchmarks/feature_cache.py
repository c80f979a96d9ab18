"""Feature cache: epoch time of a feature-extraction stage with live features ÷ with cached features.

Both variants are the real engine path (``transferlab.run.engine.run``) on the same config:
``strategy=feature_extraction`` (frozen backbone, linear head), efficientnet_lite0 on digits at 64 px, batch
64, validation/tests/export/checkpoints/progress bar off, TensorBoard logger on; only ``feature_cache.enabled``
differs. Runs alternate (live, cached, live, cached, …) in one process; every run has one warm-up epoch that
is not counted.

* Epoch time: steady-state training epochs (``benchmarks.common.EpochTimer``), median over all runs. The
  cached variant's epochs exclude the one-off feature computation, which is timed separately (the engine's
  ``FeatureCache.get``, wrapped here with a timer; a memory-only cache, ``feature_cache.dir=null``, so every
  run computes the features instead of reading a file of an earlier run).
* Break-even: the number of epochs after which caching has paid for itself,
  ``compute / (live epoch − cached epoch)``. The computation covers the train, val and test splits (what the
  run needs), while a live training epoch covers the train split only, so this is an upper bound: with
  validation on, every live epoch also pays for the val split.

Usage (from the repository root)::

    python -m benchmarks.feature_cache            # recorded numbers (≈ 2–3 min on 2 CPU cores)
    python -m benchmarks.feature_cache --quick    # smoke run (< 1 min)
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from benchmarks.common import (
    THREADS_HELP,
    EpochTimer,
    Samples,
    format_table,
    machine_line,
    quiet,
    ratio,
    result_line,
    set_threads,
)
from transferlab.cli.common import compose_config
from transferlab.run import feature_cache as fc
from transferlab.run.engine import run

TARGET = 50.0


@contextlib.contextmanager
def timed_cache_get(sink: list[tuple[str, float]]) -> Iterator[None]:
    """Wrap ``FeatureCache.get``: append ``(source, seconds)`` of every call to ``sink``."""
    original = fc.FeatureCache.get

    def get(self: fc.FeatureCache, *args: Any, **kwargs: Any) -> fc.CachedFeatures:
        start = time.perf_counter()
        cached = original(self, *args, **kwargs)
        sink.append((cached.source, time.perf_counter() - start))
        return cached

    fc.FeatureCache.get = get  # type: ignore[method-assign]
    try:
        yield
    finally:
        fc.FeatureCache.get = original  # type: ignore[method-assign]


def overrides(cached: bool, epochs: int, image_size: int, batch_size: int, output_root: str) -> list[str]:
    """The config of one variant."""
    return [
        "backbone=efficientnet_lite0",
        "data=digits",
        f"data.image_size={image_size}",
        f"data.batch_size={batch_size}",
        "strategy=feature_extraction",
        f"strategy.stages.probe.epochs={epochs}",
        f"feature_cache.enabled={str(cached).lower()}",
        "feature_cache.dir=null",
        "trainer.limit_val_batches=0",
        "trainer.limit_test_batches=1",  # the engine always tests once at the end (outside the timed epochs)
        "test_each_stage=false",
        "export=false",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        f"paths.output_root={output_root}",
        "+callbacks.extra.timer._target_=benchmarks.common.EpochTimer",
    ]


def one_run(cfg: DictConfig, run_dir: Path) -> tuple[list[float], list[tuple[str, float]]]:
    """Run the engine once; seconds of every training epoch and the ``FeatureCache.get`` calls."""
    EpochTimer.take()
    calls: list[tuple[str, float]] = []
    with quiet(), timed_cache_get(calls):
        run(cfg, run_dir.with_name(f"{run_dir.name}-{time.time_ns()}"))
    return [seconds for timer in EpochTimer.take() for seconds, _ in timer.epochs()], calls


def main(argv: list[str] | None = None) -> None:
    """Measure live vs cached epochs and print the table, the speed-up and the break-even epoch count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (< 1 min)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per variant (default 5, quick 2)")
    parser.add_argument("--live-epochs", type=int, default=3, help="timed epochs per live run")
    parser.add_argument("--cached-epochs", type=int, default=20, help="timed epochs per cached run")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    repeats = args.repeats or (2 if args.quick else 5)
    warmup = 1
    print(machine_line())
    print(
        f"setup: efficientnet_lite0 on digits {args.image_size} px, batch {args.batch_size}, "
        f"strategy=feature_extraction; {repeats} alternating runs per variant, 1 warm-up + "
        f"{args.live_epochs} (live) / {args.cached_epochs} (cached) timed epochs each"
    )
    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-cache-"))
    cfgs = {
        "live": compose_config(overrides(False, warmup + args.live_epochs, args.image_size, args.batch_size, str(tmp))),
        "cached": compose_config(
            overrides(True, warmup + args.cached_epochs, args.image_size, args.batch_size, str(tmp))
        ),
    }
    epochs = {name: Samples(name) for name in cfgs}
    compute = Samples("compute")
    for r in range(repeats):
        for name, cfg in cfgs.items():
            seconds, calls = one_run(cfg, tmp / "run")
            epochs[name].values += seconds[warmup:]
            computed = [s for source, s in calls if source == "computed"]
            if name == "cached":
                if not computed:
                    raise RuntimeError(f"the cached run did not compute features (FeatureCache.get calls: {calls})")
                compute.values += computed
            elif calls:
                raise RuntimeError(f"the live run used the feature cache: {calls}")
            median_ms = statistics.median(seconds[warmup:]) * 1000
            extra = f", features computed in {computed[0]:.2f} s" if computed else ""
            print(f"  run {r + 1}/{repeats} {name:<6} median epoch {median_ms:8.1f} ms{extra}", flush=True)
    live, cached = epochs["live"].median, epochs["cached"].median
    speedup = ratio(live, cached)
    break_even = compute.median / (live - cached) if live > cached else float("inf")
    print()
    rows = [
        ["live features (feature_cache.enabled=false)", len(epochs["live"].values), live * 1000, 1.0],
        ["cached features (feature_cache.enabled=true)", len(epochs["cached"].values), cached * 1000, speedup],
    ]
    print(format_table(["variant", "epochs", "median epoch ms", "speed-up"], rows))
    print(
        f"one-off feature computation (train+val+test splits): median {compute.median:.2f} s "
        f"({compute.spread()} s over {len(compute.values)} runs) = {compute.median / live:.2f} live epochs"
    )
    print(f"break-even: caching pays off after {break_even:.2f} epochs (compute / (live epoch - cached epoch))")
    shutil.rmtree(tmp, ignore_errors=True)
    print(machine_line())
    print(result_line("feature_cache_speedup", speedup, f">= {TARGET:g}"))


if __name__ == "__main__":
    main()
