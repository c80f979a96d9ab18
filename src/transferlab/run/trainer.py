"""The ``trainer`` config group → checked ``lightning.Trainer`` arguments, and one ``Trainer`` per plan step.

:func:`parse_trainer` is what ``train`` and ``validate`` both run: it refuses keys the engine owns or that
``Trainer`` does not take, checks the value of every shipped key, asks for hardware that exists (``trainer=gpu``
on a machine without a GPU is a config error, not two tracebacks), resolves ``precision: auto`` and builds one
throw-away ``Trainer`` so that any remaining complaint of Lightning's is a config error too, before anything
loads.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import lightning.pytorch as pl
import torch

from transferlab.errors import ConfigError
from transferlab.run.speed import SPEED_KEYS, check_speed_settings, split_speed_settings

# Keys the engine sets per step; users set epochs in strategy stages, not here.
_ENGINE_KEYS = ("max_epochs", "min_epochs", "max_steps", "logger", "callbacks", "default_root_dir")
_GPU_NAMES = ("gpu", "cuda")


def _precisions() -> tuple[Any, ...]:
    from lightning.fabric.plugins.precision.precision import (
        _PRECISION_INPUT_INT,
        _PRECISION_INPUT_STR,
        _PRECISION_INPUT_STR_ALIAS,
    )

    return (
        "auto",
        *get_args(_PRECISION_INPUT_STR),
        *get_args(_PRECISION_INPUT_INT),
        *get_args(_PRECISION_INPUT_STR_ALIAS),
    )


def _accelerators() -> tuple[str, ...]:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    return ("auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators()))


def _strategies() -> tuple[str, ...]:
    from lightning.pytorch.strategies import StrategyRegistry

    return ("auto", *sorted(StrategyRegistry.available_strategies()))


# ---- value checks of the keys the shipped trainer configs set ------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and v >= low


def _batches(v: Any) -> bool:  # an int count, or a fraction of the loader
    return v is None or (_is_int(v) and v >= 0) or (_is_number(v) and 0.0 <= v <= 1.0)


def _devices(v: Any) -> bool:
    if v == "auto" or (_is_int(v) and (v >= 1 or v == -1)):
        return True
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return _devices(int(v))
    return isinstance(v, (list, tuple)) and bool(v) and all(_is_int(i) and i >= 0 for i in v)


_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "accelerator": (
        lambda v: v in _accelerators(),
        "one of " + ", ".join(["auto", "cpu", "gpu", "cuda", "mps", "tpu"]),
    ),
    "strategy": (lambda v: v in _strategies(), "a Lightning strategy name: auto, ddp, ddp_spawn, fsdp, …"),
    "devices": (_devices, "a count ≥ 1, -1 (all), a list of device indices or auto"),
    "num_nodes": (_int_at_least(1), "an integer ≥ 1"),
    "precision": (lambda v: v in _precisions(), "auto, 32-true, 16-mixed, bf16-mixed, 16-true, bf16-true or 64-true"),
    "log_every_n_steps": (_int_at_least(1), "an integer ≥ 1"),
    "num_sanity_val_steps": (_int_at_least(-1), "an integer ≥ 0 (-1: the whole validation set)"),
    "deterministic": (lambda v: v is None or isinstance(v, bool) or v == "warn", "true, false, warn or null"),
    "benchmark": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "gradient_clip_val": (lambda v: v is None or (_is_number(v) and v >= 0), "a number ≥ 0 or null"),
    "gradient_clip_algorithm": (lambda v: v in (None, "norm", "value"), "norm, value or null"),
    "accumulate_grad_batches": (_int_at_least(1), "an integer ≥ 1"),
    "limit_train_batches": (_batches, "a batch count ≥ 0, a fraction in [0, 1] or null"),
    "limit_val_batches": (_batches, "a batch count ≥ 0, a fraction in [0, 1] or null"),
    "limit_test_batches": (_batches, "a batch count ≥ 0, a fraction in [0, 1] or null"),
    "check_val_every_n_epoch": (lambda v: v is None or (_is_int(v) and v >= 1), "an integer ≥ 1 or null"),
    "enable_progress_bar": (lambda v: isinstance(v, bool), "true or false"),
    "enable_model_summary": (lambda v: isinstance(v, bool), "true or false"),
    "sync_batchnorm": (lambda v: isinstance(v, bool), "true or false"),
}
_EXAMPLES = {
    "accelerator": "auto",
    "strategy": "auto",
    "devices": "1",
    "num_nodes": "1",
    "precision": "auto",
    "log_every_n_steps": "10",
    "num_sanity_val_steps": "0",
    "deterministic": "false",
    "benchmark": "null",
    "gradient_clip_val": "1.0",
    "gradient_clip_algorithm": "norm",
    "accumulate_grad_batches": "1",
    "limit_train_batches": "null",
    "limit_val_batches": "null",
    "limit_test_batches": "null",
    "check_val_every_n_epoch": "1",
    "enable_progress_bar": "true",
    "enable_model_summary": "false",
    "sync_batchnorm": "false",
}


@dataclass(frozen=True)
class TrainerSpec:
    """The ``trainer`` group, checked.

    Attributes:
        kwargs: Arguments for ``lightning.Trainer`` (``precision`` resolved; without the per-step keys).
        speed: transferlab's own speed keys (``channels_last``, ``compile``).
    """

    kwargs: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, Any] = field(default_factory=dict)

    @property
    def on_gpu(self) -> bool:
        """Whether training runs on CUDA GPUs."""
        return str(self.kwargs.get("accelerator", "auto")) in ("auto", *_GPU_NAMES) and torch.cuda.is_available()


def resolve_precision(precision: Any, accelerator: str) -> Any:
    """Resolve ``precision: auto``.

    ``auto`` gives ``bf16-mixed`` on CUDA GPUs that support bfloat16, ``16-mixed`` on older GPUs and
    ``32-true`` on CPU (mixed precision on CPU is slower than fp32 on most machines).

    Args:
        precision: The configured precision (``auto`` or any Lightning precision value).
        accelerator: The configured accelerator.

    Returns:
        A precision value Lightning accepts.
    """
    if precision != "auto":
        return precision
    if accelerator in ("auto", *_GPU_NAMES) and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _device_count(devices: Any) -> int | None:
    """How many devices ``devices`` asks for (``None``: all there are)."""
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if isinstance(devices, (list, tuple)):
        return max(devices) + 1 if devices else 0
    if _is_int(devices) and devices >= 1:
        return devices
    return None


def check_hardware(kwargs: Mapping[str, Any]) -> None:
    """Refuse an accelerator, or a number of devices, that this machine does not have.

    Raises:
        ConfigError: Naming ``trainer.accelerator`` or ``trainer.devices``, what exists, and the fix.
    """
    accelerator = str(kwargs.get("accelerator", "auto"))
    devices = kwargs.get("devices", "auto")
    if accelerator in _GPU_NAMES:
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise ConfigError(
                f"trainer.accelerator={accelerator}: this machine has no CUDA GPU (torch.cuda.is_available() is "
                "False). Fix: trainer=cpu, or trainer.accelerator=auto (a GPU where there is one, else the CPU)."
            )
        wanted = _device_count(devices)
        if wanted is not None and wanted > available:
            raise ConfigError(
                f"trainer.devices={devices}: asks for GPU(s) up to {wanted}, this machine has {available}. "
                f"Fix: trainer.devices={available} (or fewer), or trainer.devices=auto."
            )
    elif accelerator not in ("auto", "cpu"):
        from lightning.pytorch.accelerators import AcceleratorRegistry

        cls = AcceleratorRegistry[accelerator]["accelerator"] if accelerator in AcceleratorRegistry else None
        if cls is not None and not cls.is_available():
            raise ConfigError(
                f"trainer.accelerator={accelerator}: no {accelerator} device is available on this machine. "
                "Fix: trainer.accelerator=auto or trainer=cpu."
            )
    elif accelerator == "auto" and torch.cuda.is_available():
        wanted, available = _device_count(devices), torch.cuda.device_count()
        if wanted is not None and wanted > available:
            raise ConfigError(
                f"trainer.devices={devices}: asks for {wanted} GPU(s), this machine has {available}. "
                f"Fix: trainer.devices={available} (or fewer)."
            )


def _check_keys(raw: Mapping[str, Any]) -> None:
    valid = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    for key, value in raw.items():
        if key in SPEED_KEYS:
            continue
        if key in _ENGINE_KEYS:
            hint = (
                "epochs are set per stage: strategy.stages.<stage>.epochs=N (see 'transferlab plan')"
                if "epoch" in key or "steps" in key
                else "the engine sets it"
            )
            raise ConfigError(f"trainer.{key}: not configurable here; {hint}.")
        if key not in valid:
            raise ConfigError(
                f"trainer.{key}: lightning.Trainer has no such argument. Fix: remove it or use one of "
                f"{', '.join(sorted((valid - set(_ENGINE_KEYS)) | set(SPEED_KEYS)))}."
            )
        check = _CHECKS.get(key)
        if check is not None and not check[0](value):
            example = _EXAMPLES.get(key, "<value>")
            raise ConfigError(f"trainer.{key}={value!r}: expected {check[1]}. Fix: trainer.{key}={example}.")


def _trial(kwargs: Mapping[str, Any]) -> None:
    """Build one ``Trainer`` and turn its complaint, if any, into a config error naming the keys it mentions."""
    banners = logging.getLogger("lightning.pytorch")  # "GPU available: …" and tips: the real Trainer says them
    level = banners.level
    banners.setLevel(logging.WARNING)
    try:
        pl.Trainer(**{**kwargs, "logger": False, "enable_checkpointing": False, "max_epochs": 1})
    except Exception as err:
        text = " ".join(str(err).split()) or type(err).__name__
        named = [k for k in kwargs if k in text] or list(kwargs)
        settings = ", ".join(f"trainer.{k}={kwargs[k]!r}" for k in named)
        raise ConfigError(
            f"{settings}: lightning.Trainer refuses these settings ({type(err).__name__}: {text[:300]}). "
            "Fix: change them (see 'transferlab train --cfg job' for the trainer group), or trainer=default."
        ) from None
    finally:
        banners.setLevel(level)


def parse_trainer(raw: Mapping[str, Any]) -> TrainerSpec:
    """Check the ``trainer`` group and resolve ``precision`` (see the module docstring).

    Args:
        raw: Plain mapping of the ``trainer`` config group.

    Returns:
        The Trainer arguments and the speed settings.

    Raises:
        ConfigError: On keys the engine owns or that ``Trainer`` does not take, bad values, absent hardware,
            or settings Lightning refuses.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"trainer={raw!r}: expected a group of Trainer arguments. Fix: trainer=default.")
    _check_keys(raw)
    speed, rest = split_speed_settings(raw)
    check_speed_settings(speed)
    kwargs = dict(rest)
    check_hardware(kwargs)
    kwargs["precision"] = resolve_precision(kwargs.get("precision", "auto"), str(kwargs.get("accelerator", "auto")))
    _trial(kwargs)
    return TrainerSpec(kwargs, speed)


def trainer_kwargs(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The ``lightning.Trainer`` arguments of the ``trainer`` group (see :func:`parse_trainer`).

    Raises:
        ConfigError: As :func:`parse_trainer`.
    """
    return parse_trainer(raw).kwargs


def build_trainer(
    kwargs: Mapping[str, Any], max_epochs: int, logger: Any, callbacks: list[pl.Callback], root_dir: str
) -> pl.Trainer:
    """A Trainer for one plan step."""
    has_ckpt = any(isinstance(c, pl.callbacks.Checkpoint) for c in callbacks)
    return pl.Trainer(
        **kwargs,
        max_epochs=max_epochs,
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        default_root_dir=root_dir,
        enable_checkpointing=has_ckpt,
    )
