"""``.hydra/``: the composed config, Hydra's runtime config and the job's overrides, written once per run dir.

Hydra writes these before every job starts, which would rewrite a finished run's record when a sweep or a
run is resumed (and add ``resume=true`` to its overrides, so that ``report`` no longer pools it with its
siblings). transferlab turns Hydra's own writing off (``hydra.output_subdir: null``) and writes them here, from
the job: only into a dir that does not hold them yet, and without bookkeeping overrides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from transferlab.rundir.layout import HYDRA_CONFIG_FILE, HYDRA_DIR, HYDRA_RUNTIME_FILE, OVERRIDES_FILE

#: Top-level keys that say how to run a job, not what it computes: not part of a job's identity (its recorded
#: overrides, the config a finished run is compared with, the HParams columns).
BOOKKEEPING_KEYS = frozenset({"resume"})


def identity_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides that identify a job: bookkeeping ones (``resume=true``) dropped."""
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in BOOKKEEPING_KEYS]


def write_hydra_files(run_dir: Path, task_cfg: Any, hydra_cfg: Any, overrides: Iterable[str]) -> bool:
    """Write ``.hydra/{config,hydra,overrides}.yaml`` unless the dir already has them.

    Args:
        run_dir: The job's dir.
        task_cfg: The job's config as Hydra composed it (unresolved, without the ``hydra`` node).
        hydra_cfg: The ``hydra`` node (``HydraConfig.get()``).
        overrides: The job's task overrides.

    Returns:
        Whether the files were written (``False``: the record of an earlier start of this run is kept).
    """
    folder = run_dir / HYDRA_DIR
    if (folder / OVERRIDES_FILE).is_file():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    contents: Mapping[str, Any] = {
        HYDRA_CONFIG_FILE: task_cfg,
        HYDRA_RUNTIME_FILE: OmegaConf.create({"hydra": hydra_cfg}),
        OVERRIDES_FILE: OmegaConf.create(identity_overrides(overrides)),
    }
    for name, cfg in contents.items():
        tmp = folder / f"{name}.tmp"
        tmp.write_text(OmegaConf.to_yaml(cfg))
        tmp.replace(folder / name)
    return True
