"""End-of-sweep summary (a Hydra callback): how many jobs finished, which failed and why, where the report is.

Configured in ``conf/hydra/default.yaml``; runs in the process that ran the sweeper, for every launcher. A
sweep with failed or unfinished jobs exits with status 1 after all the other jobs have finished. Job statuses
come from :func:`transferlab.report.collect`, the same reading ``transferlab report`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

EXIT_JOBS_FAILED = 1
_MAX_MESSAGE = 300


def format_sweep_summary(sweep_dir: Path) -> tuple[str, bool]:
    """The summary text and whether any job failed or did not finish."""
    from transferlab.report import collect

    if not sweep_dir.is_dir():
        return f"transferlab: sweep dir {sweep_dir} holds no jobs", True
    jobs = collect([sweep_dir]).jobs
    by_status = {s: [j for j in jobs if j.status == s] for s in ("done", "failed", "unfinished")}
    counts = ", ".join(f"{len(v)} {k}" for k, v in by_status.items() if v)
    lines = [f"transferlab: sweep finished: {len(jobs)} jobs ({counts or 'none'}) → {sweep_dir}"]
    for job in by_status["failed"] + by_status["unfinished"]:
        message = " ".join(job.error.split()) or "no metrics.json or failure.json"
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        lines.append(f"  {job.status} job {job.dir.name} ({' '.join(job.overrides)}): {message}")
        if job.status == "failed":
            lines.append(f"    traceback: {job.dir / 'failure.json'}")
    lines.append(f"  report: transferlab report {sweep_dir}")
    lines.append(f"  dashboards: tensorboard --logdir {sweep_dir}")
    return "\n".join(lines), bool(by_status["failed"] or by_status["unfinished"])


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
