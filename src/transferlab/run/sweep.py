"""The sweep a job belongs to: its swept keys and their values, and the job's name among its siblings.

Hydra gives a job only its own overrides (``strategy=finetune seed=1``); what the sweep varies comes from the
sweep's command line, which the basic sweeper saves as ``<sweep dir>/multirun.yaml`` before any job starts,
and from ``hydra.sweeper.params`` (the search space of Optuna, and of a basic sweep set in a config). Both are
the same for every job of a sweep, so every job derives the same swept keys: what TensorBoard's HParams view
shows first and what names the job's TensorBoard run (``strategy=finetune,seed=1``, not ``0/tensorboard``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from transferlab.config.compose import override_key
from transferlab.rundir.hydra_files import BOOKKEEPING_KEYS

#: Longest TensorBoard run name; longer ones keep their start and get a digest of the whole.
MAX_LABEL = 100


@dataclass(frozen=True)
class SweptKey:
    """One key a sweep varies.

    Attributes:
        key: The override key without ``+``/``~`` (``strategy``, ``data.shots_per_class``).
        values: The values the sweep gives it, as override strings; ``None`` where the sweeper samples them
            (``interval(...)``) or Hydra lists them (``glob(...)``).
    """

    key: str
    values: tuple[str, ...] | None


def job_overrides() -> list[str]:
    """This job's command-line overrides, less ``hydra.*`` and bookkeeping keys (``resume``)."""
    if not HydraConfig.initialized():
        return []
    task = HydraConfig.get().overrides.task
    return [o for o in task if override_key(o) not in BOOKKEEPING_KEYS and not override_key(o).startswith("hydra")]


def _multirun_task(sweep_dir: Path) -> list[str]:
    try:
        data = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())
        task = data["hydra"]["overrides"]["task"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return []
    return [str(o) for o in task] if isinstance(task, list) else []


def parse_swept(lines: Sequence[str]) -> list[SweptKey]:
    """The sweep overrides among ``lines`` (``a=1,2``, ``range``, ``choice``, ``interval``, ``glob``), in order."""
    parser = OverridesParser.create()
    out: dict[str, SweptKey] = {}
    for line in lines:
        try:
            (override,) = parser.parse_overrides([line])
        except Exception:  # a line Hydra itself refused never made a job
            continue
        key = override_key(line)
        if not override.is_sweep_override() or key.startswith("hydra") or key in BOOKKEEPING_KEYS:
            continue
        try:
            values: tuple[str, ...] | None = tuple(override.sweep_string_iterator())
        except Exception:  # interval() and glob() cannot be listed here
            values = None
        out[key] = SweptKey(key, values)
    return list(out.values())


def current_sweep() -> list[SweptKey] | None:
    """The swept keys of the sweep this job runs in, or ``None`` outside a sweep (a single run, a test).

    Keys come from ``multirun.yaml`` and ``hydra.sweeper.params``; a sweeper that saves neither (and has no
    params) is taken to sweep every key the job overrides.
    """
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    lines = _multirun_task(Path(str(hydra_cfg.sweep.dir)))
    params: Any = hydra_cfg.sweeper.get("params") or {}
    lines += [f"{k}={v}" for k, v in dict(params).items()]
    swept = parse_swept(lines)
    if swept:
        return swept
    return [SweptKey(override_key(o), None) for o in job_overrides()]


def job_value(key: str) -> str:
    """This job's value of a swept key: its override, or the group option Hydra chose."""
    for override in reversed(job_overrides()):
        if override_key(override) == key:
            return override.split("=", 1)[1] if "=" in override else ""
    if HydraConfig.initialized():
        choices = dict(HydraConfig.get().runtime.choices)
        if key in choices:
            return str(choices[key])
    return "<default>"


def run_label() -> str:
    """The TensorBoard run name of this job: what tells it apart from its siblings.

    A sweep job: its swept keys (``strategy=finetune,seed=1``); a single run: its overrides, or ``defaults``;
    outside Hydra: ``""`` (events straight in ``tensorboard/``). Safe as a directory name, and stable when the
    job is resumed (bookkeeping keys such as ``resume`` do not count).
    """
    if not HydraConfig.initialized():
        return ""
    swept = current_sweep()
    parts = [f"{k.key}={job_value(k.key)}" for k in swept] if swept is not None else job_overrides()
    text = ",".join(parts) or "defaults"
    safe = "".join("_" if c in "/\\\0" or c.isspace() else c for c in text).replace("'", "").replace('"', "")
    safe = safe.lstrip(".") or "defaults"
    if len(safe) > MAX_LABEL:
        safe = safe[: MAX_LABEL - 9] + "~" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return safe
