"""The HParams dashboard's columns of a run: choices and scalars that tell runs apart, and the swept values.

TensorBoard builds its HParams table from one job's column list, so in a sweep every job logs the same
columns: the union of the keys its siblings have (a strategy sweep gives each strategy its own stage keys),
``n/a`` where a job lacks one, and one type per column. The union comes from composing the sibling configs
that differ in a swept config group (``strategy=a,b``: this job's overrides with ``strategy=b``), which is what
makes key sets differ; other swept keys only change values. The swept keys are listed first and flagged as
differing, which TensorBoard sorts to the front and shows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from transferlab.config.compose import override_key
from transferlab.run.sweep import SweptKey, current_sweep, job_overrides
from transferlab.rundir.hydra_files import BOOKKEEPING_KEYS

log = logging.getLogger(__name__)

#: The value of a column a job does not have (another strategy's stage key).
ABSENT = "n/a"

#: Groups whose plain values become columns.
GROUPS = ("backbone", "data", "strategy", "regularizer", "trainer")


def flatten(d: Any, prefix: str) -> dict[str, Any]:
    """``{a: {b: 1}}`` → ``{prefix.a.b: 1}``; lists become their string."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}"))
        return out
    if isinstance(d, list):
        return {prefix: str(d)}
    return {prefix: d}


def overridden_values(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The job's command-line overrides as HParams columns (a sweep's swept keys, whatever group they are in).

    ``group=option`` gives ``group`` → option (e.g. ``strategy`` → ``lp_ft``, ``experiment`` → its name);
    ``a.b=value`` gives ``a.b`` → the resolved value.
    """
    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    choices = dict(hydra_cfg.runtime.choices)
    cfg = OmegaConf.create(dict(resolved))
    out: dict[str, Any] = {}
    for override in hydra_cfg.overrides.task:
        key = override_key(override)
        if key in BOOKKEEPING_KEYS:
            continue
        if key in choices:
            out[key] = str(choices[key])
        elif "/" not in key and not key.startswith("hydra"):
            value = OmegaConf.select(cfg, key, default=None)
            if isinstance(value, (int, float, str, bool)) or value is None:
                out[key] = value
            else:
                out[key] = str(OmegaConf.to_container(value, resolve=True))
    return out


def run_hparams(resolved: Mapping[str, Any], seed: int, strategy: str, with_overrides: bool = True) -> dict[str, Any]:
    """Flat, plain hyperparameters for the HParams dashboard (``null`` for None).

    Args:
        resolved: The resolved config.
        seed: The run's seed.
        strategy: The strategy's name.
        with_overrides: Add this job's command-line overrides as columns (not for a sibling's config).
    """
    out: dict[str, Any] = {"seed": seed, "strategy": strategy}
    for group in GROUPS:
        flat = flatten(resolved.get(group) or {}, group)
        out.update({k: v for k, v in flat.items() if isinstance(v, (int, float, str, bool)) or v is None})
    if with_overrides:
        out.update(overridden_values(resolved))
    return {k: ("null" if v is None else v) for k, v in out.items()}


@dataclass
class Columns:
    """A job's HParams row.

    Attributes:
        values: Column → this job's value (a number, bool or string; ``n/a`` where the job lacks the key).
        swept: The swept columns, shown first.
    """

    values: dict[str, Any]
    swept: list[str]


def _sibling_configs(swept: Sequence[SweptKey]) -> list[dict[str, Any]]:
    """The resolved configs of this job with each other value of each swept config group, where they compose."""
    hydra_cfg = HydraConfig.get()
    choices = dict(hydra_cfg.runtime.choices)
    base = job_overrides()
    loader = GlobalHydra.instance().config_loader()
    out = []
    for key in swept:
        if key.key not in choices or not key.values:
            continue
        for value in key.values:
            if value == str(choices[key.key]):
                continue
            overrides = [o for o in base if override_key(o) != key.key] + [f"{key.key}={value}"]
            try:
                cfg = loader.load_configuration(hydra_cfg.job.config_name, overrides, RunMode.RUN)
                with open_dict(cfg):
                    del cfg["hydra"]
                try:
                    out.append(OmegaConf.to_container(cfg, resolve=True))
                except Exception:  # a value that resolves only in its own job: keys still count
                    out.append(OmegaConf.to_container(cfg, resolve=False))
            except Exception as err:  # a combination Hydra refuses is not a job of the sweep
                log.debug("hparams: %s=%s does not compose with this job's overrides: %s", key.key, value, err)
    return out  # type: ignore[return-value]


def _swept_value(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return "null" if value is None else value


def _column_type(values: Sequence[Any]) -> type:
    if values and all(isinstance(v, bool) for v in values):
        return bool
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return float
    return str


def sweep_columns(resolved: Mapping[str, Any], seed: int, strategy: str) -> Columns:
    """This job's HParams row over the union of its sweep's columns (just its own outside a sweep)."""
    own = run_hparams(resolved, seed, strategy)
    swept = current_sweep()
    if swept is None:
        return Columns(own, [])
    rows = [own]
    # the override columns (a swept ``a.b=…``, ``experiment``) are the same keys in every job of the sweep
    from_overrides = {k: v for k, v in own.items() if k in overridden_values(resolved)}
    try:
        for sibling in _sibling_configs(swept):
            name = (sibling.get("strategy") or {}).get("name", strategy)
            rows.append({**run_hparams(sibling, seed, str(name), with_overrides=False), **from_overrides})
    except Exception as err:  # the dashboard must never fail a finished run
        log.warning("hparams: the sweep's other columns could not be composed (%s); logging this job's own", err)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    swept_names = [k.key for k in swept if k.key in keys] + [k.key for k in swept if k.key not in keys]
    values: dict[str, Any] = {}
    for key in swept_names + sorted(k for k in keys if k not in swept_names):
        seen = [row[key] for row in rows if key in row]
        spec = next((k for k in swept if k.key == key), None)
        if spec is not None and spec.values:
            seen += [_swept_value(v) for v in spec.values]
        kind = _column_type(seen) if all(key in row for row in rows) else str
        value = own.get(key, ABSENT)
        values[key] = value if kind is not str or isinstance(value, str) else str(value)
    return Columns(values, swept_names)
