"""The module ``transferlab export`` traces: raw image in, probabilities out, the preprocessing inside the graph.

An exported file must need nothing but its runtime: no torchvision, no transferlab, no knowledge of the run's
mean and std. So the graph starts at the decoded image and ends at the probabilities:

1. ``uint8`` input ``(N, H, W, C)`` (what PIL, OpenCV and browsers decode to) becomes float ``(N, C, H, W)``
   in [0, 1]; a ``float`` input is already that.
2. The run's geometry (:class:`~transferlab.deploy.preprocess.Preprocessing`) at any ``H × W``: ``crop``
   resizes the shorter side to ``resize`` and centre-crops ``image_size``; ``square`` resizes the whole image to
   ``image_size²``. The output size and the crop offsets are computed from the input's shape inside the graph
   with torchvision's exact integer rules (``int(resize * long / short)``, ``round((h - size) / 2)`` with
   Python's half-to-even rounding), and the resize is antialiased (bilinear/bicubic) like torchvision's;
   ONNX ``Resize`` (opset 18, ``antialias=1``) and onnxruntime implement the same filter.
3. Normalisation with the backbone's mean and std (a grey channel broadcasts to the model's channels).
4. The network, then softmax (single-label) or a sigmoid per label (multi-label).

Why the resize is done in float without rounding back to uint8 between steps: torchvision resizes uint8 images
with a fixed-point kernel (and, for bicubic, clamps between its two passes), which no exporter reproduces; a
float resize is the same filter in every runtime, so the file agrees with PyTorch to ~1e-6, while it differs
from ``transferlab predict`` by up to one grey level on resized pixels (reported at export time). Where no resize
is needed (``square`` images already at ``image_size``) the resize is the identity and the two agree exactly.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.deploy.preprocess import Preprocessing

InputKind = Literal["uint8", "float"]
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


def crop_offset(excess: int) -> int:
    """``round(excess / 2)`` with Python's half-to-even rounding (torchvision's centre-crop anchor), in integers.

    Integer-only, so that inside an exported graph it stays exact shape arithmetic: for ``excess = 2k + 1``
    the half is ``k + 0.5``, which rounds to whichever of ``k`` and ``k + 1`` is even.
    """
    return (excess + (excess // 2) % 2) // 2


class ExportGraph(nn.Module):
    """Preprocessing + network + output activation, as one module (see the module docstring).

    Args:
        network: The classifier on normalised float ``(N, C, image_size, image_size)`` batches (eval mode).
        preprocessing: The run's preprocessing.
        multi_label: Sigmoid per label instead of a softmax over classes.
        input_kind: ``uint8`` NHWC in [0, 255], or ``float`` NCHW in [0, 1].
        batch: The batch size the file takes, or ``None`` for any.
        size: The ``(H, W)`` the file takes, or ``None`` for any.
    """

    def __init__(
        self,
        network: nn.Module,
        preprocessing: Preprocessing,
        *,
        multi_label: bool,
        input_kind: InputKind = "uint8",
        batch: int | None = 1,
        size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if input_kind not in ("uint8", "float"):
            raise ValueError(f"input_kind must be 'uint8' or 'float', got {input_kind!r}")
        self.network = network
        self.uint8 = input_kind == "uint8"
        self.multi_label = multi_label
        self.crop = preprocessing.geometry == "crop"
        self.image_size = preprocessing.image_size
        self.resize = preprocessing.resize
        self.mode = preprocessing.interpolation
        # antialias only exists for the filters with a support (nearest picks one pixel, as torchvision's does)
        self.antialias = self.mode in ("bilinear", "bicubic")
        self.channels = 1 if preprocessing.mode == "L" else 3
        # 0 = any: the checks below stand in, in a TorchScript file, for the static shape an ONNX file declares
        self.batch = batch or 0
        self.height, self.width = size or (0, 0)
        self.register_buffer("mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(preprocessing.std, dtype=torch.float32).view(1, -1, 1, 1))

    def _check(self, image: torch.Tensor) -> None:
        # Every condition is on a static size or dtype: an ONNX export evaluates them once and keeps none.
        if image.dim() != 4:
            raise ValueError("image: expected a 4-d batch (see the export's .json for the layout)")
        if self.uint8 and image.dtype != torch.uint8:
            raise ValueError(
                "image: expected uint8 (N, H, W, C) in [0, 255] (this file was exported with --input uint8)"
            )
        if not self.uint8 and not image.is_floating_point():
            raise ValueError("image: expected float (N, C, H, W) in [0, 1] (the file was exported with --input float)")
        channels = image.shape[3] if self.uint8 else image.shape[1]
        if channels != self.channels:
            raise ValueError(f"image: expected {self.channels} colour channel(s) (see the export's .json)")
        if self.batch > 0 and image.shape[0] != self.batch:
            raise ValueError(f"image: this file takes batches of {self.batch} (export with --dynamic-batch for any)")
        height, width = (image.shape[1], image.shape[2]) if self.uint8 else (image.shape[2], image.shape[3])
        if self.height > 0 and (height != self.height or width != self.width):
            raise ValueError(f"image: this file takes {self.height}x{self.width} images (see --input-size)")

    def _resize(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, size=[height, width], mode="nearest")
        y = F.interpolate(x, size=[height, width], mode=self.mode, align_corners=False, antialias=self.antialias)
        # bicubic overshoots at edges; the images it stands for are bounded (torchvision clamps its uint8 result)
        return y.clamp(0.0, 1.0)

    def geometry(self, x: torch.Tensor) -> torch.Tensor:
        """Float ``(N, C, H, W)`` in [0, 1] at any ``H × W`` → ``(N, C, image_size, image_size)``."""
        size = self.image_size
        if not self.crop:
            return self._resize(x, size, size)
        height, width = x.shape[-2], x.shape[-1]
        if torch.jit.is_scripting():  # noqa: SIM108 (TorchScript skips the other branch only in an if statement)
            short = min(height, width)
        else:  # a symbolic min: a Python comparison would fix the exported graph to this input's orientation
            short = torch.sym_min(height, width)
        # torchvision: the shorter side becomes `resize`, the longer int(resize * long / short); integer floor
        # division gives the same number (an exact quotient of integers is never mis-rounded by the float one)
        new_h = self.resize * height // short
        new_w = self.resize * width // short
        x = self._resize(x, new_h, new_w)
        top = crop_offset(new_h - size)
        left = crop_offset(new_w - size)
        # a gather of `size` rows and columns, not a slice: its length is the constant `size`, so the network
        # after it sees a static shape (a slice with symbolic bounds has a length the exporter cannot reason about)
        steps = torch.arange(size, device=x.device)
        return x.index_select(2, steps + top).index_select(3, steps + left)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(N, classes)`` of a batch of images (``uint8`` NHWC or ``float`` NCHW, any ``H × W``)."""
        self._check(image)
        # uint8: torchvision's ToDtype(float32, scale=True), i.e. convert, then multiply by 1/255
        x = image.permute(0, 3, 1, 2).to(torch.float32).mul(1.0 / 255) if self.uint8 else image.to(torch.float32)
        x = self.geometry(x)
        x = (x - self.mean) / self.std
        logits = self.network(x).float()
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)
