"""The ``strategy.adapter`` config, validated once into a typed :class:`LoraSpec`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from transferlab.errors import ConfigError

AdapterKind = Literal["lora"]

#: Adapter kinds ``strategy.adapter.kind`` accepts.
KINDS: tuple[str, ...] = ("lora",)

_KEYS = ("kind", "rank", "alpha", "dropout", "target_modules", "bias")
WHERE = "strategy.adapter"


@dataclass(frozen=True)
class LoraSpec:
    """Low-rank adaptation (Hu et al. 2021) of the backbone's Conv2d/Linear layers, injected with peft.

    Attributes:
        kind: Always ``lora``.
        rank: Rank ``r`` of the update ``B @ A`` (≥ 1).
        alpha: Scale numerator: the update is multiplied by ``alpha / rank``.
        dropout: Dropout on the adapter's input (in [0, 1)).
        target_modules: fnmatch or regular-expression patterns over module names (see
            :func:`transferlab.adapters.targets.resolve_targets`).
        bias: peft's bias option; only ``none``: biases are BitFit's job (``params: bias``).
    """

    kind: AdapterKind
    rank: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...]
    bias: Literal["none"] = "none"


def _int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ConfigError(f"{WHERE}.{key}={value!r}: expected an integer ≥ {minimum}. Fix: {WHERE}.{key}=8.")
    if int(value) < minimum:
        raise ConfigError(f"{WHERE}.{key}={value!r}: must be ≥ {minimum}. Fix: {WHERE}.{key}=8.")
    return int(value)


def _float(key: str, value: Any, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{WHERE}.{key}={value!r}: expected a number. Fix: {WHERE}.{key}={fix}.")
    return float(value)


def _patterns(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"{WHERE}.target_modules={value!r}: expected a non-empty list of module-name patterns. "
            f"Fix: {WHERE}.target_modules='[*conv_pw,*conv_head]' (run `python -c \"from transferlab.backbones "
            f"import create_backbone; print(create_backbone('<name>'))\"` to see the module names)."
        )
    return tuple(value)


def parse_adapter(raw: Mapping[str, Any]) -> LoraSpec:
    """Validate ``strategy.adapter`` and fill in defaults.

    Args:
        raw: Plain mapping, e.g. ``{kind: lora, rank: 8, alpha: 16, target_modules: [...]}``.

    Returns:
        The typed spec; ``alpha`` defaults to ``2 * rank``, ``dropout`` to 0.

    Raises:
        ConfigError: On an unknown key or kind, a bad value, or missing ``target_modules``; the message names
            the key, the value and the fix.
    """
    for key in raw:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), _KEYS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"{WHERE}.{key}: unknown key; {hint}valid keys: {', '.join(_KEYS)}.")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(
            f"{WHERE}.kind={kind!r}: unknown adapter kind; choose one of {', '.join(KINDS)}. "
            f"Fix: {WHERE}.kind=lora (or strategy=lora). For bias-only tuning use strategy=bitfit (no adapter)."
        )
    rank = _int("rank", raw.get("rank", 8), minimum=1)
    alpha = raw.get("alpha")
    alpha = float(2 * rank) if alpha is None else _float("alpha", alpha, fix=str(2 * rank))
    if alpha <= 0:
        raise ConfigError(
            f"{WHERE}.alpha={alpha!r}: must be > 0 (the update is scaled by alpha/rank). Fix: {WHERE}.alpha={2 * rank}."
        )
    dropout = _float("dropout", raw.get("dropout", 0.0), fix="0.0")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"{WHERE}.dropout={dropout!r}: must be in [0, 1). Fix: {WHERE}.dropout=0.0.")
    if raw.get("target_modules") is None:
        raise ConfigError(
            f"{WHERE}.target_modules is missing: name the layers LoRA adapts (see conf/strategy/lora.yaml). "
            f"Fix: {WHERE}.target_modules='[*conv_pw,*conv_pwl,*conv_head]'."
        )
    bias = raw.get("bias", "none")
    if bias != "none":
        raise ConfigError(
            f"{WHERE}.bias={bias!r}: only 'none' is supported; adapters train only their own low-rank weights. "
            f"Fix: {WHERE}.bias=none, and use strategy=bitfit (params: bias) to tune biases."
        )
    return LoraSpec(
        kind="lora",
        rank=rank,
        alpha=alpha,
        dropout=dropout,
        target_modules=_patterns(raw["target_modules"]),
    )
