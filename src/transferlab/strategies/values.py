"""Value checks of the strategy keys: numbers with ranges, probabilities, trainable sets, unknown keys.

Each check raises a :class:`~transferlab.errors.ConfigError` that names the full key, the bad value and a fix
(``strategies/spec.py`` calls them for every key of every stage).
"""

from __future__ import annotations

import difflib
from typing import Any

from transferlab.errors import ConfigError

#: A sensible value per stage key, shown in the fix of an out-of-range value.
EXAMPLES: dict[str, str] = {
    "epochs": "5",
    "lr_head": "0.01",
    "lr_backbone": "0.001",
    "lr_decay": "0.7",
    "unfreeze_every": "1",
    "warmup_epochs": "0",
    "unfreeze_max": "2",
    "weight_decay": "0.01",
    "momentum": "0.9",
    "min_lr_ratio": "0.0",
    "shared_groups": "2",
    "head_dropout": "0.1",
    "patience": "2",
    "min_delta": "0.0",
    "label_smoothing": "0.1",
    "mixup": "0.2",
    "cutmix": "1.0",
    "mix_prob": "1.0",
    "mix_switch_prob": "0.5",
    "ema_decay": "0.998",
    "head_init": "ridge",
}
#: Stage keys that accept ``null`` (off, or "the default of elsewhere").
NULLABLE = (
    "lr_backbone", "lr_decay", "unfreeze_every", "unfreeze_max", "patience", "label_smoothing", "ema_decay",
    "head_init",
)  # fmt: skip
#: Stage keys holding a probability or a fraction in [0, 1] (``label_smoothing`` in [0, 1)).
UNIT = ("mix_prob", "mix_switch_prob")


def unknown_key(where: str, key: str, valid: list[str] | tuple[str, ...]) -> ConfigError:
    """The error of an unknown key under ``where``, with the closest valid key."""
    close = difflib.get_close_matches(key, list(valid), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"{where}.{key}: unknown key; {hint}valid keys: {', '.join(valid)}.")


def number(key: str, value: Any, *, kind: type, minimum: float | None = None, strict: bool = False) -> Any:
    """``value`` as ``kind`` (int or float), at least (or, ``strict``, above) ``minimum``.

    Raises:
        ConfigError: For a non-number, a non-integer where an integer is needed, or a value out of range.
    """
    what = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r}: expected {what}. Fix: {key}=<{what.split()[-1]}>.")
    if kind is int and not float(value).is_integer():
        raise ConfigError(f"{key}={value!r}: expected an integer. Fix: {key}={int(value)}.")
    value = kind(value)
    if minimum is not None and (value <= minimum if strict else value < minimum):
        op = ">" if strict else "≥"
        example = EXAMPLES.get(key.rsplit(".", 1)[-1])
        fix = f"{key}=<{what.split()[-1]} {op} {minimum:g}>" + (f", e.g. {key}={example}" if example else "")
        raise ConfigError(f"{key}={value!r}: must be {op} {minimum}. Fix: {fix}.")
    return value


def unit(full: str, key: str, value: Any) -> float:
    """A probability in [0, 1]; label smoothing in [0, 1); an EMA decay in (0, 1)."""
    value = number(full, value, kind=float, minimum=0.0)
    if key == "ema_decay":
        ok, span = 0.0 < value < 1.0, "(0, 1): the weight the average keeps per step"
    elif key == "label_smoothing":
        ok, span = value < 1.0, "[0, 1)"
    else:
        ok, span = value <= 1.0, "[0, 1] (a probability)"
    if not ok:
        raise ConfigError(f"{full}={value!r}: must be in {span}. Fix: {full}={EXAMPLES[key]}.")
    return value


def trainable(key: str, value: Any) -> str | tuple[str, ...]:
    """A stage's ``trainable``: ``head``, ``all``, ``new``, ``top:K``, or a tuple of group patterns.

    Raises:
        ConfigError: For an empty or malformed value.
    """
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError(
                f"{key}={value!r}: must not be empty; name the groups that train. Fix: {key}=all (or head, top:2)."
            )
        if value in ("head", "all", "new"):
            return value
        if value.startswith("top:"):
            if not value[4:].isdigit():
                raise ConfigError(f"{key}={value!r}: 'top:K' needs an integer K, e.g. {key}=top:2.")
            return value
        return (value,)  # a single pattern
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    raise ConfigError(
        f"{key}={value!r}: expected 'head', 'all', 'new', 'top:K' or a list of layer-group patterns. "
        f"Fix: {key}=all or {key}=[group4,top] ('transferlab plan' shows the group names)."
    )
