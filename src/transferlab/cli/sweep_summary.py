"""End-of-sweep summary (a Hydra callback): how many jobs finished, which failed and why, where the report is.

Configured in ``conf/hydra/default.yaml``; runs in the process that ran the sweeper, for every launcher. A
sweep with failed jobs exits with status 1 after all the other jobs have finished.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from transferlab.training.failures import read_failure
from transferlab.training.results import METRICS_FILE

EXIT_JOBS_FAILED = 1


def job_statuses(sweep_dir: Path) -> dict[str, list[tuple[Path, dict[str, Any] | None]]]:
    """The job dirs of a sweep (numbered sub-dirs) by status: ``done``, ``failed`` (with the record), ``unfinished``."""
    out: dict[str, list[tuple[Path, dict[str, Any] | None]]] = {"done": [], "failed": [], "unfinished": []}
    jobs = sorted((d for d in sweep_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))
    for job in jobs:
        if (job / METRICS_FILE).is_file():
            out["done"].append((job, None))
        elif (failure := read_failure(job)) is not None:
            out["failed"].append((job, failure))
        else:
            out["unfinished"].append((job, None))
    return out


def format_sweep_summary(sweep_dir: Path) -> tuple[str, bool]:
    """The summary text and whether any job failed or did not finish."""
    if not sweep_dir.is_dir():
        return f"transferlab: sweep dir {sweep_dir} holds no jobs", True
    status = job_statuses(sweep_dir)
    total = sum(len(v) for v in status.values())
    counts = ", ".join(f"{len(v)} {k}" for k, v in status.items() if v)
    lines = [f"transferlab: sweep finished: {total} jobs ({counts or 'none'}) → {sweep_dir}"]
    for job, failure in status["failed"]:
        assert failure is not None
        overrides = " ".join(failure.get("overrides") or [])
        message = " ".join(str(failure.get("message", "")).split())
        if len(message) > 300:
            message = message[:297] + "..."
        lines.append(f"  failed job {job.name} ({overrides}): {failure.get('error_type')}: {message}")
        lines.append(f"    traceback: {job / 'failure.json'}")
    for job, _ in status["unfinished"]:
        lines.append(f"  unfinished job {job.name}: no metrics.json or failure.json in {job}")
    lines.append(f"  report: transferlab report {sweep_dir}")
    lines.append(f"  dashboards: tensorboard --logdir {sweep_dir}")
    return "\n".join(lines), bool(status["failed"] or status["unfinished"])


class SweepSummary(Callback):
    """Hydra callback that prints :func:`format_sweep_summary` after a multirun and sets the exit status."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the summary; exit 1 when a job failed (the others have all run by now)."""
        sweep_dir = Path(str(config.hydra.sweep.dir))
        text, failed = format_sweep_summary(sweep_dir)
        print(text, file=sys.stderr if failed else sys.stdout, flush=True)
        if failed:
            # SystemExit passes Hydra's callback guard (which turns exceptions into warnings) on purpose.
            raise SystemExit(EXIT_JOBS_FAILED)
