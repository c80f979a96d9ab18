"""Reading weights files safely: ``.safetensors``, ``.pt``/``.pth``/``.bin``, Lightning ``.ckpt``, run directories.

Pickle-based files are always read with ``torch.load(weights_only=True)``: a file that needs arbitrary Python
objects is refused, never unpickled. Reading knows nothing about backbones; :mod:`.weights` maps the tensors.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from transferlab.errors import WeightsError
from transferlab.rundir.layout import CHECKPOINTS_DIR, LAST_CHECKPOINT
from transferlab.rundir.layout import MODEL_FILE as RUN_MODEL_FILE

#: Lightning checkpoints of a run directory, tried when there is no exported model.
RUN_CHECKPOINT_GLOB = f"{CHECKPOINTS_DIR}/**/{LAST_CHECKPOINT}"


@dataclass(frozen=True)
class WeightsFile:
    """Tensors and metadata read from one file.

    Attributes:
        path: The file read (a run directory resolves to its model or checkpoint file).
        tensors: Name → tensor, as stored.
        metadata: Safetensors metadata (strings) or a checkpoint's ``hyper_parameters``.
    """

    path: Path
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def backbone_name(self) -> str | None:
        """Registry name of the architecture the file was saved from, when the file records it."""
        name = self.metadata.get("backbone_name")
        return str(name) if name else None


def resolve_weights_path(path: str | os.PathLike[str]) -> Path:
    """The weights file that ``path`` names: the file itself, or the model / last checkpoint of a run dir.

    Args:
        path: A weights file, or a run directory of ``transferlab train``.

    Returns:
        An existing file.

    Raises:
        WeightsError: If nothing loadable is there.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / RUN_MODEL_FILE).is_file():
            return p / RUN_MODEL_FILE
        lasts = sorted(p.glob(RUN_CHECKPOINT_GLOB), key=lambda f: f.stat().st_mtime)
        if lasts:  # several stages each keep a last.ckpt: the newest is the end of the run
            return lasts[-1]
        raise WeightsError(
            f"backbone.weights={path}: the directory has no {RUN_MODEL_FILE} and no {RUN_CHECKPOINT_GLOB}. "
            f"Fix: point backbone.weights at a run directory of 'transferlab train' or at a weights file."
        )
    if not p.is_file():
        raise WeightsError(
            f"backbone.weights={path}: no such file or directory. Fix: give an existing .safetensors/.pt/.pth/"
            f".ckpt file or run directory, or one of: null (random init), hub, package."
        )
    return p


def read_weights_file(path: str | os.PathLike[str]) -> WeightsFile:
    """Read tensors and metadata from a weights file or run directory, without running any pickled code.

    Args:
        path: ``.safetensors``, ``.pt``/``.pth``/``.bin``/``.ckpt`` file, or a run directory.

    Returns:
        The tensors and metadata.

    Raises:
        WeightsError: If the file is missing, truncated, corrupt, holds no tensors, or needs unsafe unpickling.
    """
    file = resolve_weights_path(path)
    if file.suffix == ".safetensors":
        return _read_safetensors(file)
    return _read_torch(file)


def _read_safetensors(file: Path) -> WeightsFile:
    try:
        tensors = load_file(str(file))
        with safe_open(str(file), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except Exception as err:  # SafetensorError is not importable by a stable name; it derives from Exception
        raise WeightsError(
            f"{file}: not a readable safetensors file ({err}); it may be truncated or corrupt. "
            f"Fix: export the model again or pass another file."
        ) from err
    return WeightsFile(file, tensors, metadata)


def _read_torch(file: Path) -> WeightsFile:
    try:
        # weights_only=True, always: unpickling anything else can run arbitrary code.
        with warnings.catch_warnings():  # a plain pickle's protocol warning would precede our one-line error
            warnings.filterwarnings("ignore", message=r".*pickle protocol.*", category=UserWarning)
            obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise _corrupt(file, err) from err
        reason = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line), None)
        if reason is None:  # e.g. "Unsupported operand 149": a pickle written by pickle.dump, not torch.save
            detail = next((line.strip() for line in str(err).splitlines() if line.startswith("Unsupported")), "")
            raise WeightsError(
                f"{file}: not a PyTorch weights file: a plain Python pickle or another format that "
                f"torch.load(weights_only=True) cannot read{f' ({detail})' if detail else ''}. Fix: save the "
                f"model's tensors with torch.save(model.state_dict(), path) or safetensors.torch.save_file, and "
                f"pass that file."
            ) from None
        raise WeightsError(
            f"{file}: refused: it contains pickled Python objects that could run code when loaded ({reason}). "
            f"Fix: if you trust it, re-save only its tensors (torch.save(model.state_dict(), path) or "
            f"safetensors.torch.save_file) and pass that file."
        ) from None
    except Exception as err:  # truncated zip (RuntimeError), empty file (EOFError), garbage (KeyError, …)
        raise _corrupt(file, err) from err
    tensors, metadata = _state_dict_of(obj)
    if not tensors:
        keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise WeightsError(
            f"{file}: holds no tensors (top level: {keys}). Fix: pass a state dict, a Lightning .ckpt or a "
            f".safetensors file."
        )
    return WeightsFile(file, tensors, metadata)


def _corrupt(file: Path, err: BaseException) -> WeightsError:
    detail = str(err).splitlines()[0].split(". ")[0][:160] if str(err) else "no detail"
    return WeightsError(
        f"{file}: cannot be read as a PyTorch weights file ({type(err).__name__}: {detail}); it may be "
        f"truncated or corrupt. Fix: copy or save the file again, or pass another file."
    )


def _state_dict_of(obj: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a loaded object: a state dict, or a checkpoint that wraps one."""
    if not isinstance(obj, Mapping):
        return {}, {}
    hparams = obj.get("hyper_parameters")
    metadata = dict(hparams) if isinstance(hparams, Mapping) else {}
    # Lightning / timm-train: "state_dict"; common training scripts: "model_state_dict" or "model".
    for key in ("state_dict", "model_state_dict", "model"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}, metadata


def checkpoint_backbone_name(file: WeightsFile) -> str:
    """The registry name of the architecture a transferlab export or checkpoint was saved from.

    Raises:
        WeightsError: If the file does not record it.
    """
    name = file.backbone_name
    if name is None or name == "checkpoint":
        raise WeightsError(
            f"backbone=checkpoint: {file.path} does not record its architecture (no 'backbone_name' in its "
            f"metadata or hyper_parameters); only transferlab exports and checkpoints do. Fix: name the "
            f"architecture: backbone=<arch> backbone.weights={file.path}, e.g. backbone=resnet18."
        )
    return name
