"""Lightning ``Trainer`` construction from the ``trainer`` config group: precision ``auto`` resolved here."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from transferlab.errors import ConfigError
from transferlab.training.speed import SPEED_KEYS

# Keys the engine sets per step; users set epochs in strategy stages, not here.
_ENGINE_KEYS = ("max_epochs", "min_epochs", "max_steps", "logger", "callbacks", "default_root_dir")


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
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def trainer_kwargs(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check the ``trainer`` group against ``lightning.Trainer``'s arguments and resolve ``precision``.

    Args:
        raw: Plain mapping of the ``trainer`` config group.

    Returns:
        Keyword arguments for ``lightning.Trainer`` (without the per-step keys the engine sets).

    Raises:
        ConfigError: On keys the engine owns or that ``Trainer`` does not take.
    """
    valid = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    # transferlab's own speed keys (channels_last, compile) are applied to the module, not passed to Trainer
    kwargs = {k: v for k, v in raw.items() if k not in SPEED_KEYS}
    for key in kwargs:
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
    kwargs["precision"] = resolve_precision(kwargs.get("precision", "auto"), str(kwargs.get("accelerator", "auto")))
    return kwargs


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
