"""The GPU path's speed settings: channels-last memory format and optional ``torch.compile``.

Both are transferlab settings in the ``trainer`` group (not ``lightning.Trainer`` arguments):

- ``channels_last: auto|true|false`` — NHWC weights and input batches for CNNs; tensor cores run convolutions
  in NHWC, so on GPUs this saves a layout transform per conv. ``auto`` turns it on for backbones with 2-D
  convolutions when training runs on a GPU (on CPUs the gain is uneven, so it stays off).
- ``compile: false|true|{torch.compile kwargs}`` — compiles the backbone's ``forward_features`` *method*,
  not the module: ``state_dict`` keys stay ``backbone.*`` (no ``_orig_mod.`` prefix), so checkpoints,
  exports, resumes and reloads are unchanged; unfreezing a layer group only changes ``requires_grad``, which
  ``torch.compile`` guards on and recompiles for.

:func:`skip_failing_nvml_probe` removes a per-step cost on machines without an NVIDIA driver.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from transferlab.errors import ConfigError

log = logging.getLogger(__name__)

SPEED_KEYS = ("channels_last", "compile")
_CHANNELS_LAST_ERROR = "trainer.channels_last={setting}: expected auto, true or false. Fix: trainer.channels_last=auto."


def split_speed_settings(trainer_cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate transferlab's speed keys from the ``lightning.Trainer`` arguments of the ``trainer`` group."""
    speed = {k: trainer_cfg[k] for k in SPEED_KEYS if k in trainer_cfg}
    rest = {k: v for k, v in trainer_cfg.items() if k not in SPEED_KEYS}
    return speed, rest


def wants_channels_last(setting: Any, backbone: nn.Module, on_gpu: bool) -> bool:
    """Resolve ``trainer.channels_last`` (``auto``: CNN backbones on GPUs).

    Raises:
        ConfigError: On a value other than auto/true/false.
    """
    if setting in (None, "auto"):
        return on_gpu and any(isinstance(m, nn.Conv2d) for m in backbone.modules())
    if isinstance(setting, bool):
        return setting
    raise ConfigError(_CHANNELS_LAST_ERROR.format(setting=repr(setting)))


def compile_options(setting: Any) -> dict[str, Any] | None:
    """Resolve ``trainer.compile`` into ``torch.compile`` keyword arguments (``None`` = off).

    Raises:
        ConfigError: On a value that is neither a bool nor a mapping of ``torch.compile`` arguments.
    """
    if setting in (None, False):
        return None
    if setting is True:
        return {}
    if isinstance(setting, Mapping):
        allowed = {"fullgraph", "dynamic", "backend", "mode", "options", "disable"}
        unknown = sorted(set(setting) - allowed)
        if unknown:
            raise ConfigError(
                f"trainer.compile: unknown torch.compile argument(s) {unknown}. Fix: use {sorted(allowed)}, "
                "e.g. trainer.compile={mode: max-autotune}."
            )
        return dict(setting)
    raise ConfigError(
        f"trainer.compile={setting!r}: expected true, false or a mapping of torch.compile arguments. "
        "Fix: trainer.compile=false (or true, or trainer.compile={mode: max-autotune})."
    )


def check_speed_settings(speed: Mapping[str, Any]) -> None:
    """Check the speed keys' values before anything loads (raises :class:`ConfigError` like the resolvers)."""
    setting = speed.get("channels_last", "auto")
    if not (setting in (None, "auto") or isinstance(setting, bool)):
        raise ConfigError(_CHANNELS_LAST_ERROR.format(setting=repr(setting)))
    compile_options(speed.get("compile", False))


def apply_speed_settings(module: nn.Module, speed: Mapping[str, Any], on_gpu: bool) -> dict[str, Any]:
    """Apply channels-last and compilation to a built module; return what was applied (for the run log).

    Args:
        module: The TransferModule (its ``backbone`` gets compiled; the whole module goes channels-last).
        speed: The ``trainer`` group's speed keys (see :func:`split_speed_settings`).
        on_gpu: Whether training runs on a GPU.
    """
    backbone = module.backbone  # type: ignore[attr-defined]
    channels_last = wants_channels_last(speed.get("channels_last", "auto"), backbone, on_gpu)
    module.use_channels_last(channels_last)  # type: ignore[operator] # batches follow (on_after_batch_transfer)
    options = compile_options(speed.get("compile", False))
    if options is not None:
        # An instance attribute shadows the method: the module tree and its state_dict keys stay as they are.
        backbone.forward_features = torch.compile(backbone.forward_features, **options)
    applied = {"channels_last": channels_last, "compile": options}
    log.info("speed: channels_last=%s, compile=%s", channels_last, "off" if options is None else options or "on")
    return applied


NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def skip_failing_nvml_probe() -> bool:
    """Stop ``torch.cuda.is_available()`` from retrying NVML on every call where NVML does not exist.

    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` on import (so that CUDA checks do not initialise CUDA
    before a fork). Until CUDA is initialised torch then ``dlopen``s ``libnvidia-ml.so.1`` on every call, and
    Adam/AdamW call it on every optimizer step. Without an NVIDIA driver the load fails (~70 µs here) and torch
    falls back to the CUDA runtime's device count anyway, so dropping the variable changes no answer and no
    fork behaviour: it only removes a failed ``dlopen`` per step (~1.4 ms of a 19-step cached-feature epoch).

    Returns:
        Whether the variable was removed.
    """
    if os.environ.get(NVML_CHECK) != "1":
        return False
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        del os.environ[NVML_CHECK]
        return True
    return False
