"""``failure.json``: what a job that raised leaves in its run dir (error, message, traceback, overrides).

Hydra's own job log keeps no traceback and a crashed job leaves no ``metrics.json``; this record is what
``transferlab report`` and the end-of-sweep summary read to list failed jobs with their error.
"""

from __future__ import annotations

import datetime as _dt
import traceback
from pathlib import Path

from transferlab.rundir.layout import FAILURE_FILE
from transferlab.rundir.metrics import write_json_atomic


def write_failure(run_dir: Path, error: BaseException, overrides: list[str] | None = None) -> Path:
    """Record ``error`` in ``<run_dir>/failure.json`` (atomically; the dir is created if needed).

    Args:
        run_dir: The job's output dir.
        error: The exception that ended the job.
        overrides: The job's command-line overrides (what tells it apart in a sweep).

    Returns:
        The path written.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "status": "failed",
        "error_type": type(error).__name__,
        "message": str(error).strip() or type(error).__name__,
        "traceback": "".join(traceback.format_exception(error)),
        "overrides": list(overrides or []),
        "time": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    path = run_dir / FAILURE_FILE
    write_json_atomic(path, record)
    return path


def clear_failure(run_dir: Path) -> None:
    """Remove an old failure record (a job that is run again and finishes is no longer failed)."""
    (run_dir / FAILURE_FILE).unlink(missing_ok=True)
