"""The HParams dashboard's columns of a run: choices and scalars that tell runs apart, and the swept values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from transferlab.rundir.hydra_files import BOOKKEEPING_KEYS

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
        key = override.split("=", 1)[0].lstrip("+~")
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


def run_hparams(resolved: Mapping[str, Any], seed: int, strategy: str) -> dict[str, Any]:
    """Flat, plain hyperparameters for the HParams dashboard (``null`` for None)."""
    out: dict[str, Any] = {"seed": seed, "strategy": strategy}
    for group in GROUPS:
        flat = flatten(resolved.get(group) or {}, group)
        out.update({k: v for k, v in flat.items() if isinstance(v, (int, float, str, bool)) or v is None})
    out.update(overridden_values(resolved))
    return {k: ("null" if v is None else v) for k, v in out.items()}
