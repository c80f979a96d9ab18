"""A finished run dir: read back instead of run again (resume, sweep reruns), or refused (a fresh run)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from transferlab.errors import ConfigError
from transferlab.rundir.hydra_files import BOOKKEEPING_KEYS
from transferlab.rundir.layout import CONFIG_FILE, METRICS_FILE

log = logging.getLogger(__name__)


def comparable(config: Any) -> Any:
    """A resolved config without the bookkeeping keys (a resumed run equals its first start)."""
    return {k: v for k, v in config.items() if k not in BOOKKEEPING_KEYS} if isinstance(config, Mapping) else config


def refuse_finished(run_dir: Path) -> ConfigError:
    """The error for a fresh run into a dir that holds a finished run."""
    return ConfigError(
        f"hydra.run.dir={run_dir}: this dir already holds a finished run ({METRICS_FILE}); a new run would "
        "overwrite its checkpoints and results. Fix: choose another dir (or leave hydra.run.dir to its "
        "timestamped default), or 'transferlab resume <dir>' to keep it."
    )


def finished_metrics(run_dir: Path, resolved: Mapping[str, Any], resume: bool | str) -> dict[str, Any] | None:
    """The metrics of a run that already finished in ``run_dir`` (when resuming), else ``None``.

    Args:
        run_dir: The job's dir.
        resolved: The job's resolved config (compared with the finished run's ``config.yaml``).
        resume: ``False`` for a fresh run; ``True`` or ``"auto"`` when the job may already be done.

    Raises:
        ConfigError: When a fresh run would overwrite a finished one, or the finished run had another config.
    """
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    if resume not in (True, "auto"):
        raise refuse_finished(run_dir)
    stored = run_dir / CONFIG_FILE
    if stored.is_file() and comparable(OmegaConf.to_container(OmegaConf.load(stored))) != comparable(dict(resolved)):
        raise ConfigError(
            f"{run_dir} holds a finished run of a different config ({CONFIG_FILE} differs), so it is not "
            "this job's result. Fix: give this sweep or run its own dir (hydra.sweep.dir=... / hydra.run.dir=...)."
        )
    log.info("%s already holds this finished run (%s): skipped", run_dir, METRICS_FILE)
    return json.loads(path.read_text())
