"""Reload a finished run (run dir, ``model.safetensors`` or Lightning ``.ckpt``) as a TransferModule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from transferlab.errors import WeightsError
from transferlab.rundir.export import read_metadata
from transferlab.rundir.layout import CHECKPOINTS_DIR, LAST_CHECKPOINT, MODEL_FILE


@dataclass(frozen=True)
class SavedModel:
    """What a run saved: tensors of ``backbone.*`` and ``head.*`` and the run's plain-data description.

    Attributes:
        path: The file the tensors came from.
        state_dict: ``backbone.*`` and ``head.*`` tensors.
        backbone_name: Registry name of the architecture.
        num_classes: Number of classes of the head.
        class_names: Class names, index-aligned.
        config: The run's resolved config (plain dict).
        multi_label: Whether the head is multi-label (one sigmoid per label, decided by thresholds).
        preprocessing: How images became the model's input, as the export recorded it (plain data; ``None`` in
            checkpoints and files of older versions: then it is derived from ``config``).
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    backbone_name: str
    num_classes: int
    class_names: list[str]
    config: dict[str, Any]
    multi_label: bool = False
    preprocessing: dict[str, Any] | None = None

    @property
    def thresholds(self) -> dict[str, float] | None:
        """A multi-label head's decision thresholds by label name (tuned on the run's validation split).

        Read from the ``head.thresholds`` tensor, which both ``model.safetensors`` and a ``.ckpt`` hold (the
        export's metadata repeats them for readers without torch); ``None`` for a single-label head.
        """
        tensor = self.state_dict.get(THRESHOLDS_KEY)
        if not self.multi_label or tensor is None:
            return None
        names = self.class_names if len(self.class_names) == len(tensor) else [str(i) for i in range(len(tensor))]
        return dict(zip(names, map(float, tensor.tolist()), strict=True))


#: Where a multi-label head keeps its decision thresholds (a buffer of the head).
THRESHOLDS_KEY = "head.thresholds"

_FIX_FOREIGN = "To start from foreign weights, train with backbone=<arch> backbone.weights=<file> instead."


def _resolve(path: Path) -> Path:
    if path.is_dir():
        if (path / MODEL_FILE).is_file():
            return path / MODEL_FILE
        lasts = sorted(path.glob(f"{CHECKPOINTS_DIR}/**/{LAST_CHECKPOINT}"), key=lambda p: p.stat().st_mtime)
        if lasts:
            return lasts[-1]
        raise WeightsError(
            f"{path}: no {MODEL_FILE} and no checkpoints/**/last.ckpt in this directory. "
            f"Fix: pass a finished run's directory (it holds {MODEL_FILE}) or a .ckpt/.safetensors file."
        )
    if not path.is_file():
        raise WeightsError(f"{path}: no such file or directory. Fix: pass a run directory or a model file.")
    return path


def _json_or_text(value: str) -> Any:
    """A metadata value: JSON (numbers, lists, mappings), or the text itself (export stores strings as they are)."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_saved_model(path: str | Path) -> SavedModel:
    """Read a model saved by ``transferlab train`` without unpickling arbitrary objects.

    Args:
        path: A run directory, a ``model.safetensors`` or a Lightning ``.ckpt`` written by transferlab.

    Returns:
        The saved model.

    Raises:
        WeightsError: If the file is missing, unreadable or not a transferlab model.
    """
    file = _resolve(Path(path))
    try:
        if file.suffix == ".safetensors":
            tensors = load_file(str(file))
            meta = read_metadata(file)
            info = {k: (v if k == "backbone_name" else _json_or_text(v)) for k, v in meta.items() if k != "format"}
        else:
            ckpt = torch.load(file, map_location="cpu", weights_only=True)
            if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
                raise WeightsError(
                    f"{file}: not a Lightning checkpoint of 'transferlab train' (no 'state_dict' in it; a plain "
                    f"state dict or another object). {_FIX_FOREIGN}"
                )
            tensors = ckpt["state_dict"]
            info = dict(ckpt.get("hyper_parameters") or {})
    except WeightsError:
        raise
    except Exception as err:  # truncated files, foreign pickles refused by weights_only, bad JSON
        detail = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:160]
        raise WeightsError(
            f"{file}: cannot be read as a transferlab model ({type(err).__name__}: {detail}); it may be truncated, "
            f"corrupt or not written by 'transferlab train'. Fix: pass a finished run's directory, its "
            f"{MODEL_FILE} or a checkpoints/<stage>/last.ckpt. {_FIX_FOREIGN}"
        ) from err
    if "tasks" in info:
        raise WeightsError(
            f"{file}: a multi-task model (tasks {', '.join(info['tasks'])}); 'transferlab eval' tests single-head "
            "models only. Its run's metrics.json holds test/<task>/acc; to reuse the trunk, start a run with "
            f"backbone=checkpoint backbone.weights={file}."
        )
    missing = [k for k in ("backbone_name", "num_classes", "config") if k not in info]
    if missing:
        raise WeightsError(
            f"{file}: not written by 'transferlab train' (no {', '.join(missing)} metadata). "
            f"Fix: pass a run of 'transferlab train'. {_FIX_FOREIGN}"
        )
    state = {k: v for k, v in tensors.items() if k.startswith(("backbone.", "head."))}
    return SavedModel(
        path=file,
        state_dict=state,
        backbone_name=str(info["backbone_name"]),
        num_classes=int(info["num_classes"]),
        class_names=list(info.get("class_names") or []),
        config=dict(info["config"]),
        multi_label=bool(info.get("multi_label", False)),
        preprocessing=info.get("preprocessing") if isinstance(info.get("preprocessing"), dict) else None,
    )
