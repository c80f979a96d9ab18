"""Export a trained model as safetensors with plain-data metadata, and read it back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from transferlab.rundir.layout import MODEL_FILE

__all__ = ["MODEL_FILE", "MODEL_FORMAT", "export_model", "read_metadata"]

#: The ``format`` metadata of a transferlab model file.
MODEL_FORMAT = "transferlab.model.v1"


def export_model(module: torch.nn.Module, path: Path, metadata: dict[str, Any]) -> Path:
    """Write the backbone and head tensors to ``path`` atomically (temp file, then rename).

    Args:
        module: A TransferModule (only ``backbone.*``, ``head.*`` — a multi-label head's tuned
            ``head.thresholds`` included — and a multi-task model's ``heads.<task>.*`` tensors are written).
        path: Destination ``.safetensors`` file.
        metadata: Plain data; values that are not strings are stored as JSON.

    Returns:
        The path written.
    """
    keep = ("backbone.", "head.", "heads.")
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items() if k.startswith(keep)}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a safetensors file (strings, as stored)."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
