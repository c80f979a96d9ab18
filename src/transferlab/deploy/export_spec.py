"""The ``<file>.json`` beside an export: everything a caller needs to feed the file and read its output.

A deployment often has neither transferlab nor the run dir, so the spec says in plain data what the graph
takes (name, dtype, layout, shape with its free dimensions named, value range, colour mode), what it does
inside (the run's preprocessing), what it returns (probabilities, index-aligned with ``class_names``; the
multi-label thresholds by label), where it came from (the model file and its sha256, the transferlab, torch
and opset versions) and how well it agreed with PyTorch when it was written.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from transferlab import __version__
from transferlab.deploy.export_graph import INPUT_NAME, OUTPUT_NAME
from transferlab.deploy.loaded import LoadedModel

FORMAT = 1


def spec_path(export: Path) -> Path:
    """``model.onnx`` → ``model.onnx.json`` (the full name, so an ONNX and a TorchScript export can sit together)."""
    return export.with_name(export.name + ".json")


def sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_spec(model: LoadedModel, *, input_kind: str, dynamic_batch: bool, input_size: tuple[int, int] | None) -> dict:
    """The ``input`` entry: name, dtype, layout, shape (free dims by name), range and what each dim means."""
    channels = 1 if model.preprocessing.mode == "L" else 3
    batch: int | str = "batch" if dynamic_batch else 1
    height: int | str = input_size[0] if input_size else "height"
    width: int | str = input_size[1] if input_size else "width"
    uint8 = input_kind == "uint8"
    shape = [batch, height, width, channels] if uint8 else [batch, channels, height, width]
    free = {
        name: meaning
        for name, meaning in (
            ("batch", "any number of images of the same size per call"),
            ("height", "any image height >= 1 (the graph resizes and crops, see preprocessing)"),
            ("width", "any image width >= 1"),
        )
        if name in shape
    }
    mode = model.preprocessing.mode
    return {
        "name": INPUT_NAME,
        "dtype": "uint8" if uint8 else "float32",
        "layout": "NHWC" if uint8 else "NCHW",
        "shape": shape,
        "dynamic_dims": free,
        "range": [0, 255] if uint8 else [0.0, 1.0],
        "colour_mode": mode,
        "how_to_make": (
            f"decode the image, convert it to {mode} (PIL: Image.open(p).convert({mode!r})), take its pixels as "
            + ("uint8 rows x columns x channels" if uint8 else "float32 channels x rows x columns divided by 255")
            + ("; a grey image has one channel" if mode == "L" else "; channels in R, G, B order")
            + ("" if dynamic_batch else "; one image per call")
            + (f"; resized to {height}x{width} first (fixed at export)" if input_size else "")
        ),
    }


def preprocessing_spec(model: LoadedModel, input_kind: str) -> dict:
    """The ``preprocessing_in_graph`` entry: the run's preprocessing and the steps the graph does, in order."""
    pre = model.preprocessing
    if pre.geometry == "crop":
        geometry = (
            f"resize the shorter side to {pre.resize} (the longer to int({pre.resize} * long / short)), "
            f"{pre.interpolation}{', antialiased' if pre.interpolation != 'nearest' else ''}, then centre-crop "
            f"{pre.image_size}x{pre.image_size}"
        )
    else:
        geometry = f"resize the whole image to {pre.image_size}x{pre.image_size}, {pre.interpolation}, antialiased"
    steps = [
        "uint8 NHWC -> float32 NCHW, divided by 255" if input_kind == "uint8" else "float32 NCHW taken as it is",
        f"{geometry} (in float; clamped to [0, 1])",
        f"subtract mean {list(pre.mean)}, divide by std {list(pre.std)}"
        + (" (the grey channel broadcasts to the model's channels)" if pre.mode == "L" and pre.channels > 1 else ""),
        "the network",
        "sigmoid per label" if model.multi_label else "softmax over classes",
    ]
    return {**pre.to_dict(), "steps": steps}


def export_spec(
    model: LoadedModel,
    export: Path,
    *,
    fmt: str,
    input_kind: str,
    dynamic_batch: bool,
    input_size: tuple[int, int] | None,
    facts: dict[str, Any],
    verification: dict[str, Any],
) -> dict[str, Any]:
    """The whole spec (see the module docstring)."""
    batch: int | str = "batch" if dynamic_batch else 1
    names = model.class_names
    thresholds = None
    if model.multi_label and model.thresholds is not None:
        thresholds = dict(zip(names, map(float, model.thresholds.tolist()), strict=True))
    meaning = (
        "independent sigmoid probability per label; a label is predicted when its probability >= its threshold"
        if model.multi_label
        else "softmax probabilities over the classes (they sum to 1); the prediction is the argmax"
    )
    return {
        "format": FORMAT,
        "file": export.name,
        "export_format": fmt,
        "input": input_spec(model, input_kind=input_kind, dynamic_batch=dynamic_batch, input_size=input_size),
        "preprocessing_in_graph": preprocessing_spec(model, input_kind),
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": [batch, len(names)],
            "meaning": meaning + "; index i is class_names[i]",
        },
        "class_names": names,
        "multi_label": model.multi_label,
        "thresholds": thresholds,
        "backbone": model.saved.backbone_name,
        "source_model": {"path": str(model.path.resolve()), "sha256": sha256(model.path)},
        "versions": {"transferlab": __version__, **facts.pop("versions", {})},
        **facts,
        "verification": verification,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_spec(path: Path, spec: dict[str, Any]) -> None:
    """Write the spec as indented JSON (the caller renames it into place)."""
    path.write_text(json.dumps(spec, indent=2) + "\n")
