"""Finding jobs under run and sweep dirs: their status, overrides, metrics, errors, and a sweep's missing jobs.

A job dir is any dir holding ``metrics.json`` (done), ``failure.json`` (failed) or ``.hydra/`` (started but
neither: killed, crashed before writing a record, or still running). A sweep dir is one holding
``multirun.yaml`` (Hydra's basic sweeper) or the dir a multirun job's ``.hydra/hydra.yaml`` names as its sweep
dir (the Optuna sweeper writes no ``multirun.yaml``). Expected jobs of a basic sweep are the cartesian product
of its sweep overrides, expanded with Hydra's own :meth:`BasicSweeper.split_arguments`; of an Optuna sweep,
``hydra.sweeper.n_trials`` trials.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from transferlab.rundir.layout import (
    CONFIG_FILE,
    FAILURE_FILE,
    HYDRA_CONFIG_FILE,
    HYDRA_DIR,
    HYDRA_RUNTIME_FILE,
    METRICS_FILE,
    MULTIRUN_FILE,
    NON_JOB_DIRS,
    OPTUNA_FILE,
    OVERRIDES_FILE,
)

DEFAULT = "<default>"
DELETED = "<deleted>"
_SKIP_DIRS = NON_JOB_DIRS
_LOG_ERROR = re.compile(r"\]\[(?:ERROR|CRITICAL)\] - (.*)")

try:  # the C loader reads Hydra's big hydra.yaml files several times faster
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


@dataclass
class Job:
    """One job dir and what it left behind."""

    dir: Path
    status: str  # done | failed | unfinished
    overrides: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # override key -> canonical value string
    metrics: dict[str, Any] | None = None
    error: str = ""
    num: int | None = None
    sweep_dir: Path | None = None
    _config: dict[str, Any] | None = field(default=None, repr=False)

    def config(self) -> dict[str, Any]:
        """The job's resolved ``config.yaml`` (or ``.hydra/config.yaml``), read on first use; ``{}`` if none."""
        if self._config is None:
            self._config = {}
            for path in (self.dir / CONFIG_FILE, self.dir / HYDRA_DIR / HYDRA_CONFIG_FILE):
                data = _read_yaml(path)
                if isinstance(data, dict):
                    self._config = data
                    break
        return self._config


@dataclass
class Missing:
    """An expected sweep job that has no dir (never started, or the sweep stopped before it)."""

    sweep_dir: Path
    num: int
    overrides: list[str] | None  # None where the sweeper chooses them at run time (Optuna)


@dataclass
class Sweep:
    """A sweep dir: its sweeper, the jobs it should have and the Optuna result if any."""

    dir: Path
    sweeper: str  # basic | optuna | the sweeper's _target_
    overrides: list[str] = field(default_factory=list)  # the sweep's command-line (task) overrides
    expected: int | None = None  # None: cannot tell (unknown sweeper, no multirun.yaml, glob sweeps)
    present: int = 0
    note: str = ""
    optuna: dict[str, Any] | None = None


@dataclass
class Collection:
    """Everything found under the report's dirs."""

    roots: list[Path]
    jobs: list[Job]
    sweeps: list[Sweep]
    missing: list[Missing]

    def by_status(self, status: str) -> list[Job]:
        """The jobs with ``status`` (done, failed, unfinished)."""
        return [j for j in self.jobs if j.status == status]


def _read_yaml(path: Path) -> Any:
    try:
        with path.open() as f:
            return yaml.load(f, Loader=_Loader)
    except (OSError, yaml.YAMLError):
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """Override strings → ``{key: canonical value}`` with Hydra's override parser.

    ``+key=v``, ``++key=v`` and ``key=v`` give the same key; ``~key`` gives ``<deleted>``. Values are
    rendered by Hydra (``false`` and ``False`` → ``False``, ``1e-3`` → ``0.001``) so the same setting written
    two ways compares equal. An override Hydra cannot parse keeps its raw text after ``=``.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    values: dict[str, str] = {}
    for text in overrides:
        try:
            (o,) = parser.parse_overrides([text])
            key = o.key_or_group + (f"@{o.package}" if o.package else "")
            if o.is_delete():
                values[key] = DELETED
            elif o.is_sweep_override():
                values[key] = text.split("=", 1)[1]
            else:
                values[key] = o.get_value_element_as_str()
        except (HydraException, ValueError):
            key, _, value = text.partition("=")
            values[key.lstrip("+~")] = value
    return values


def _log_error(job_dir: Path) -> str:
    """The last ERROR line of the job's Hydra log, for jobs that left no ``failure.json``."""
    last = ""
    for log in sorted(job_dir.glob("*.log")):
        try:
            for line in log.read_text(errors="replace").splitlines():
                match = _LOG_ERROR.search(line)
                if match:
                    last = match.group(1).strip()
        except OSError:
            continue
    return f"log: {last}" if last else ""


def read_job(job_dir: Path) -> Job:
    """Read one job dir: status, overrides, metrics or error, job number and sweep dir."""
    metrics = _read_json(job_dir / METRICS_FILE)
    failure = _read_json(job_dir / FAILURE_FILE)
    overrides = _read_yaml(job_dir / HYDRA_DIR / OVERRIDES_FILE)
    if not isinstance(overrides, list) and isinstance(failure, dict):
        overrides = failure.get("overrides")
    overrides = [str(o) for o in overrides] if isinstance(overrides, list) else []
    job = Job(dir=job_dir, status="unfinished", overrides=overrides, values=parse_overrides(overrides))
    if isinstance(metrics, dict):
        job.status, job.metrics = "done", metrics
    elif isinstance(failure, dict):
        job.status = "failed"
        message = " ".join(str(failure.get("message", "")).split())
        job.error = f"{failure.get('error_type', 'Error')}: {message}".rstrip(": ")
    else:
        job.error = _log_error(job_dir)
    _locate_in_sweep(job)
    return job


def _locate_in_sweep(job: Job) -> None:
    """Set ``job.num`` and ``job.sweep_dir`` from ``.hydra/hydra.yaml``, else from the dir layout."""
    hydra = (_read_yaml(job.dir / HYDRA_DIR / HYDRA_RUNTIME_FILE) or {}).get("hydra") or {}
    num = (hydra.get("job") or {}).get("num")
    job.num = num if isinstance(num, int) else (int(job.dir.name) if job.dir.name.isdigit() else None)
    if hydra.get("mode") == "MULTIRUN":
        job.sweep_dir = _local_sweep_dir(job.dir, hydra)
        return
    for parent in list(job.dir.parents)[:2]:
        if (parent / MULTIRUN_FILE).is_file():
            job.sweep_dir = parent
            return


def _local_sweep_dir(job_dir: Path, hydra: dict[str, Any]) -> Path:
    """The sweep dir as seen from here: the job dir less its ``subdir`` (outputs may have been moved)."""
    recorded = str((hydra.get("runtime") or {}).get("output_dir") or "")
    sweep = str((hydra.get("sweep") or {}).get("dir") or "")
    if recorded and sweep:
        cwd = str((hydra.get("runtime") or {}).get("cwd") or "")
        sweep_abs = Path(sweep) if Path(sweep).is_absolute() else Path(cwd) / sweep
        try:
            depth = len(Path(recorded).relative_to(sweep_abs).parts)
        except ValueError:
            depth = 1
        if depth >= 1:
            return job_dir.parents[depth - 1]
    return job_dir.parent


def find_job_dirs(root: Path) -> tuple[list[Path], list[Path]]:
    """Job dirs and sweep dirs (holding ``multirun.yaml``) under ``root``, in sorted, numeric-aware order."""
    jobs: list[Path] = []
    sweeps: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if MULTIRUN_FILE in filenames:
            sweeps.append(here)
        if METRICS_FILE in filenames or FAILURE_FILE in filenames or HYDRA_DIR in dirnames:
            jobs.append(here)
            dirnames[:] = []  # a job's own subdirs (tensorboard, checkpoints) hold no jobs
            continue
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS]
    return sorted(jobs, key=_path_key), sorted(sweeps, key=_path_key)


def _path_key(path: Path) -> list[tuple[int, int, str]]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts]


def _sweep_config(sweep_dir: Path, jobs: list[Job]) -> dict[str, Any]:
    """The ``hydra`` node of ``multirun.yaml``, else of one of the sweep's jobs' ``.hydra/hydra.yaml``."""
    data = _read_yaml(sweep_dir / MULTIRUN_FILE)
    if isinstance(data, dict) and isinstance(data.get("hydra"), dict):
        return {**data["hydra"], "_from_multirun": True}
    for job in jobs:
        data = _read_yaml(job.dir / HYDRA_DIR / HYDRA_RUNTIME_FILE)
        if isinstance(data, dict) and isinstance(data.get("hydra"), dict):
            return data["hydra"]
    return {}


def expand_basic_sweep(overrides: list[str], params: dict[str, Any] | None = None) -> list[list[str]]:
    """The jobs of a basic-sweeper multirun, in job-number order, as Hydra's BasicSweeper builds them.

    Args:
        overrides: The sweep's command-line overrides (``hydra.overrides.task``), e.g. ``["seed=0,1", "a=x"]``.
        params: ``hydra.sweeper.params`` (sweeps declared in the config), which come first.

    Returns:
        One override list per job.

    Raises:
        HydraException: For sweeps the basic sweeper cannot expand without the config (``glob``) or at all.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{k}={v}" for k, v in (params or {}).items()] + list(overrides)
    parsed = OverridesParser.create().parse_overrides(arguments)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _sweep_missing(sweep: Sweep, hydra: dict[str, Any], jobs: list[Job]) -> list[Missing]:
    """Fill ``sweep.expected``/``note`` and list the expected jobs that have no dir."""
    from hydra.errors import HydraException

    sweeper = hydra.get("sweeper") or {}
    nums = {j.num for j in jobs if j.num is not None}
    if sweep.sweeper == "optuna":
        n_trials = sweeper.get("n_trials")
        if not isinstance(n_trials, int):
            sweep.note = "hydra.sweeper.n_trials unknown"
            return []
        sweep.expected = n_trials
        return [Missing(sweep.dir, n, None) for n in range(n_trials) if n not in nums]
    if sweep.sweeper != "basic":
        sweep.note = "expected jobs unknown for this sweeper"
        return []
    if not hydra.get("_from_multirun"):
        sweep.note = f"no {MULTIRUN_FILE}: expected jobs unknown"
        return []
    try:
        expected = expand_basic_sweep(sweep.overrides, sweeper.get("params"))
    except (HydraException, ValueError, AssertionError) as err:
        sweep.note = f"expected jobs unknown: {' '.join(str(err).split())}"
        return []
    sweep.expected = len(expected)
    unnumbered = [j.values for j in jobs if j.num is None]
    missing = []
    for n, job_overrides in enumerate(expected):
        if n not in nums and parse_overrides(job_overrides) not in unnumbered:
            missing.append(Missing(sweep.dir, n, job_overrides))
    return missing


def _sweeper_name(hydra: dict[str, Any]) -> str:
    target = str((hydra.get("sweeper") or {}).get("_target_") or "")
    if "BasicSweeper" in target or not target:
        return "basic"
    if "optuna" in target.lower():
        return "optuna"
    return target


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == r or r in resolved.parents for r in roots)


def collect(roots: list[Path]) -> Collection:
    """Find and read every job under ``roots``; work out each sweep's expected and missing jobs.

    Args:
        roots: Run dirs, sweep dirs, or any dirs above them.

    Returns:
        The jobs (sorted by path, numeric-aware), sweeps and missing jobs.
    """
    job_dirs: list[Path] = []
    sweep_dirs: list[Path] = []
    for root in roots:
        found_jobs, found_sweeps = find_job_dirs(root)
        job_dirs += [d for d in found_jobs if d not in job_dirs]
        sweep_dirs += [d for d in found_sweeps if d not in sweep_dirs]
    jobs = [read_job(d) for d in job_dirs]
    resolved_roots = [r.resolve() for r in roots]
    by_sweep: dict[Path, list[Job]] = {d.resolve(): [] for d in sweep_dirs}
    shown: dict[Path, Path] = {d.resolve(): d for d in sweep_dirs}
    for job in jobs:
        if job.sweep_dir is not None and _inside(job.sweep_dir, resolved_roots):
            key = job.sweep_dir.resolve()
            by_sweep.setdefault(key, []).append(job)
            shown.setdefault(key, job.sweep_dir)
    sweeps, missing = [], []
    for key in sorted(by_sweep, key=_path_key):
        members = by_sweep[key]
        hydra = _sweep_config(shown[key], members)
        task = (hydra.get("overrides") or {}).get("task") if hydra.get("_from_multirun") else None
        sweep = Sweep(dir=shown[key], sweeper=_sweeper_name(hydra), overrides=[str(o) for o in task or []])
        sweep.present = len(members)
        missing += _sweep_missing(sweep, hydra, members)
        results = _read_yaml(shown[key] / OPTUNA_FILE)
        sweep.optuna = results if isinstance(results, dict) else None
        sweeps.append(sweep)
    return Collection(roots=list(roots), jobs=jobs, sweeps=sweeps, missing=missing)
