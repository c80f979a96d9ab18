"""Write a trained model as one ONNX or TorchScript file, checked in its own runtime before it is kept.

The file holds :class:`~transferlab.deploy.export_graph.ExportGraph`: decoded image in, probabilities out.
Shapes: the height and width are free (the graph resizes and crops any size, as ``predict`` does) unless
``input_size`` fixes them; the batch is 1 unless ``dynamic_batch``. A fixed batch of 1 is the default because
it is what single-image serving sends and what static-shape runtimes (TensorRT, Core ML converters) want.

Nothing is written where the user looks until the file has been checked: the export goes to a hidden temp file
beside the target, is reloaded in its real runtime (onnxruntime's CPU session, ``torch.jit.load``), compared with
the PyTorch module on real images (:mod:`~transferlab.deploy.check_images`), and only then renamed, with its
``<file>.json`` spec (:mod:`~transferlab.deploy.export_spec`). A failed export or check leaves nothing behind and
an existing file as it was.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from transferlab.deploy.check_images import CheckImages, check_images
from transferlab.deploy.export_graph import INPUT_NAME, OUTPUT_NAME, ExportGraph, InputKind
from transferlab.deploy.export_spec import export_spec, spec_path, write_spec
from transferlab.deploy.loaded import LoadedModel
from transferlab.errors import TransferlabError

ExportFormat = Literal["onnx", "torchscript"]
FORMATS: tuple[ExportFormat, ...] = ("onnx", "torchscript")
#: Largest |probability difference| between the file in its runtime and the PyTorch module that is accepted.
TOLERANCE: dict[str, float] = {"onnx": 1e-4, "torchscript": 1e-5}
#: What each format needs beyond torch (the ``export`` extra of pyproject.toml).
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {"onnx": ("onnx", "onnxruntime", "onnxscript"), "torchscript": ()}
INSTALL_HINT = "pip install -e \".[export]\" in a transferlab clone, or pip install 'transferlab[export]'"


class MissingRuntimeError(TransferlabError, ImportError):
    """The packages a format needs to be written and checked are not installed."""


class ExportMismatchError(RuntimeError):
    """The exported file, run in its runtime, disagrees with PyTorch beyond the tolerance (not a user error)."""


@dataclass(frozen=True)
class ExportOptions:
    """What to export.

    Attributes:
        fmt: ``onnx`` or ``torchscript``.
        input_kind: ``uint8`` NHWC in [0, 255] or ``float`` NCHW in [0, 1].
        dynamic_batch: Any batch size (else 1).
        input_size: A fixed ``(H, W)``, or ``None`` for any.
        check_limit: At most this many of the run's own test images are used for the check.
    """

    fmt: ExportFormat
    input_kind: InputKind = "uint8"
    dynamic_batch: bool = False
    input_size: tuple[int, int] | None = None
    check_limit: int = 100

    @property
    def tolerance(self) -> float:
        """The check's bound on the probability difference."""
        return TOLERANCE[self.fmt]


@dataclass
class Comparison:
    """Agreement of two sets of probabilities over the same images."""

    max_abs_diff: float
    top1_agreement: float

    def to_dict(self) -> dict[str, float]:
        """Plain data for the spec."""
        return {"max_abs_diff": self.max_abs_diff, "top1_agreement": self.top1_agreement}


@dataclass
class Verification:
    """The export-time check: the file in its runtime vs PyTorch, and PyTorch vs ``transferlab predict``'s path.

    Attributes:
        images: How many images were compared.
        source: Where they came from.
        runtime: The file, run in its runtime, against the PyTorch module on every image (what passes or fails
            the export).
        predict_real: The PyTorch module against ``predict``'s path (PIL + torchvision preprocessing, then the
            network) on the run's own images (``None`` without any); reported only.
        predict_synthetic: The same on the synthetic images of other sizes, which are always resized (torchvision
            resizes uint8 in fixed point, the graph in float: see export_graph); reported only.
        tolerance: The bound ``runtime.max_abs_diff`` had to meet.
        seconds: Time the check took.
    """

    images: int
    source: str
    runtime: Comparison
    predict_real: Comparison | None
    predict_synthetic: Comparison
    tolerance: float
    seconds: float

    def to_dict(self) -> dict[str, object]:
        """Plain data for the spec."""
        real = self.predict_real.to_dict() if self.predict_real else None
        return {
            "images": self.images,
            "source": self.source,
            "tolerance": self.tolerance,
            "runtime_vs_pytorch": self.runtime.to_dict(),
            "pytorch_vs_predict": {"run_images": real, "synthetic_images": self.predict_synthetic.to_dict()},
        }


def check_runtime(fmt: ExportFormat) -> dict[str, str]:
    """The versions of the packages ``fmt`` needs (checked before any model is loaded).

    Raises:
        MissingRuntimeError: Naming every missing package and the install command.
    """
    versions: dict[str, str] = {"torch": torch.__version__}
    missing = []
    for name in RUNTIME_PACKAGES[fmt]:
        try:
            versions[name] = str(getattr(importlib.import_module(name), "__version__", "unknown"))
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingRuntimeError(
            f"--format {fmt} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed (the exporter writes the file with onnx/onnxscript and checks it in onnxruntime). Fix: "
            f"{INSTALL_HINT}; or --format torchscript, which needs only torch."
        )
    return versions


def build_graph(model: LoadedModel, options: ExportOptions, network: torch.nn.Module | None = None) -> ExportGraph:
    """The module to export (``network`` replaces the model's own, e.g. by its traced version)."""
    graph = ExportGraph(
        network if network is not None else model.network,
        model.preprocessing,
        multi_label=model.multi_label,
        input_kind=options.input_kind,
        batch=None if options.dynamic_batch else 1,
        size=options.input_size,
    )
    return graph.eval()


def example_input(model: LoadedModel, options: ExportOptions) -> torch.Tensor:
    """A batch of the export's input kind to trace with.

    Two images when the batch is free (a size-1 example would make the exporter fix it to 1), of unequal height
    and width so that neither is taken for the other.
    """
    side = model.preprocessing.image_size
    height, width = options.input_size or (side + 7, side + 29)
    batch = 2 if options.dynamic_batch else 1
    channels = 1 if model.preprocessing.mode == "L" else 3
    images = torch.randint(0, 256, (batch, height, width, channels), generator=torch.Generator().manual_seed(0))
    images = images.to(torch.uint8)
    return images if options.input_kind == "uint8" else images.permute(0, 3, 1, 2).float().div(255)


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Keep the exporters' progress prints and tracer warnings off the terminal (shown if the export fails)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield buffer


def _export_onnx(graph: ExportGraph, example: torch.Tensor, path: Path, options: ExportOptions) -> dict[str, object]:
    import onnx

    free = {0: torch.export.Dim("batch", min=1)} if options.dynamic_batch else {}
    if options.input_size is None:
        spatial = (1, 2) if options.input_kind == "uint8" else (2, 3)
        free |= {spatial[0]: torch.export.Dim("height", min=1), spatial[1]: torch.export.Dim("width", min=1)}
    with _quiet() as log:
        try:
            torch.onnx.export(
                graph, (example,), str(path), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes={"image": free} if free else None, external_data=False,
            )  # fmt: skip
        except Exception as err:
            raise ExportMismatchError(f"torch.onnx.export failed: {err}\n{log.getvalue()[-2000:]}") from err
    opset = next((o.version for o in onnx.load(str(path), load_external_data=False).opset_import if not o.domain), None)
    return {"opset": opset}


def _export_torchscript(
    model: LoadedModel, example: torch.Tensor, path: Path, options: ExportOptions
) -> dict[str, object]:
    side = model.preprocessing.image_size
    # The network is traced (timm and torchvision models trace; many do not script) on batches of 2 at the one
    # size it ever sees; the preprocessing around it is scripted, so its shape arithmetic stays live for any H x W.
    with _quiet() as log, torch.no_grad():
        try:
            traced = torch.jit.trace(model.network, torch.zeros(2, model.preprocessing.channels, side, side))
            scripted = torch.jit.script(build_graph(model, options, network=traced))
            torch.jit.save(scripted, str(path))
        except Exception as err:
            raise ExportMismatchError(f"TorchScript export failed: {err}\n{log.getvalue()[-2000:]}") from err
    return {}


def export_file(model: LoadedModel, path: Path, options: ExportOptions) -> dict[str, object]:
    """Write the export of ``model`` to ``path`` (no check; see :func:`verify`). Returns format facts for the spec.

    Raises:
        ExportMismatchError: When the exporter fails.
    """
    example = example_input(model, options)
    if options.fmt == "onnx":
        return _export_onnx(build_graph(model, options), example, path, options)
    return _export_torchscript(model, example, path, options)


def load_runner(path: Path, fmt: ExportFormat) -> Callable[[np.ndarray], np.ndarray]:
    """The exported file, loaded in its own runtime, as ``input array → probabilities``."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    with warnings.catch_warnings():  # "torch.jit.load is deprecated": TorchScript files are what was asked for
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return run


def _groups(images: list[np.ndarray], batched: bool, most: int = 16) -> list[list[int]]:
    """Indices of images to run together: one per call for a fixed batch of 1, else same-shape runs of ``most``."""
    if not batched:
        return [[i] for i in range(len(images))]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(i)
    return [idx[k : k + most] for idx in by_shape.values() for k in range(0, len(idx), most)]


def _as_input(images: list[np.ndarray], kind: InputKind) -> np.ndarray:
    batch = np.stack(images)  # (N, H, W, C) uint8
    if kind == "uint8":
        return batch
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255)


def _compare(a: np.ndarray, b: np.ndarray) -> Comparison:
    return Comparison(float(np.abs(a - b).max()), float((a.argmax(1) == b.argmax(1)).mean()))


def predict_path(model: LoadedModel, images: list[np.ndarray]) -> np.ndarray:
    """Probabilities the way ``transferlab predict`` computes them: PIL image → torchvision ops → the network."""
    pre = model.preprocessing
    out = []
    with torch.no_grad():
        for k in range(0, len(images), 32):
            pils = [Image.fromarray(im[:, :, 0] if im.shape[2] == 1 else im) for im in images[k : k + 32]]
            batch = torch.stack([pre.to_uint8(p) for p in pils])
            out.append(model.probabilities(model.network(pre.normalize(batch))).numpy())
    return np.concatenate(out)


def verify(model: LoadedModel, path: Path, options: ExportOptions, checks: CheckImages | None = None) -> Verification:
    """Compare the file at ``path``, in its runtime, with the PyTorch module on real images.

    Raises:
        ExportMismatchError: When the largest probability difference is above ``options.tolerance``.
    """
    start = time.perf_counter()
    checks = checks or check_images(model, limit=options.check_limit, size=options.input_size)
    run = load_runner(path, options.fmt)
    graph = build_graph(model, replace(options, dynamic_batch=True))  # the reference: same graph, any batch
    n = len(checks.images)
    ours = np.zeros((n, len(model.class_names)), np.float32)
    theirs = np.zeros_like(ours)
    with torch.no_grad():
        for idx in _groups(checks.images, batched=True):  # PyTorch takes any batch: run it fast
            ours[idx] = graph(torch.from_numpy(_as_input([checks.images[i] for i in idx], options.input_kind))).numpy()
    for idx in _groups(checks.images, batched=options.dynamic_batch):
        theirs[idx] = run(_as_input([checks.images[i] for i in idx], options.input_kind))
    predicted = predict_path(model, checks.images)
    real = checks.real
    result = Verification(
        images=n,
        source=checks.source,
        runtime=_compare(theirs, ours),
        predict_real=_compare(ours[:real], predicted[:real]) if real else None,
        predict_synthetic=_compare(ours[real:], predicted[real:]),
        tolerance=options.tolerance,
        seconds=time.perf_counter() - start,
    )
    if not result.runtime.max_abs_diff <= options.tolerance:  # also catches NaN
        raise ExportMismatchError(
            f"the exported {options.fmt} file disagrees with PyTorch on {checks.source}: max |probability "
            f"difference| {result.runtime.max_abs_diff:.3g} > {options.tolerance:g} (top-1 agreement "
            f"{result.runtime.top1_agreement:.4f}); the file was not kept. This is a bug of the exporter or the "
            "runtime for this architecture: please report it with the run's backbone and this message."
        )
    return result


def temp_path(target: Path) -> Path:
    """A hidden file beside ``target`` (same file system, so the final rename is atomic)."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


@dataclass
class ExportResult:
    """What :func:`write_export` wrote and measured."""

    path: Path
    spec_path: Path
    verification: Verification
    export_seconds: float


def write_export(model: LoadedModel, target: Path, options: ExportOptions, versions: dict[str, str]) -> ExportResult:
    """Export, check, then rename the file and its spec into place (see the module docstring).

    Raises:
        ExportMismatchError: When the exporter fails or the check does; nothing is left at ``target``'s name.
    """
    final_spec = spec_path(target)
    tmp, tmp_spec = temp_path(target), temp_path(final_spec)
    try:
        start = time.perf_counter()
        facts = export_file(model, tmp, options)
        seconds = time.perf_counter() - start
        verification = verify(model, tmp, options)
        spec = export_spec(
            model, target, fmt=options.fmt, input_kind=options.input_kind, dynamic_batch=options.dynamic_batch,
            input_size=options.input_size, facts={"versions": dict(versions), **facts},
            verification=verification.to_dict(),
        )  # fmt: skip
        write_spec(tmp_spec, spec)
        tmp.replace(target)
        tmp_spec.replace(final_spec)
    finally:
        for leftover in (tmp, tmp_spec, tmp.with_name(tmp.name + ".data")):
            leftover.unlink(missing_ok=True)
    return ExportResult(target, final_spec, verification, seconds)
