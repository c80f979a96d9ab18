"""The export graph's in-graph preprocessing equals torchvision's, and its ONNX form equals it at every image size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from transferlab.deploy.export_graph import ExportGraph, crop_offset
from transferlab.deploy.preprocess import Preprocessing

MODES = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC}
SHAPES = [(37, 53), (53, 37), (36, 36), (36, 40), (41, 36), (1, 1), (2, 90), (300, 200), (257, 256), (256, 258)]


def _pre(geometry: str = "crop", interpolation: str = "bilinear", mode: str = "RGB") -> Preprocessing:
    channels = 1 if mode == "L" else 3
    mean, std = (0.485, 0.456, 0.406)[:channels], (0.229, 0.224, 0.225)[:channels]
    resize = 36 if geometry == "crop" else 32
    return Preprocessing(32, resize, geometry, interpolation, mode, mean, std)  # type: ignore[arg-type]


class TinyNet(nn.Module):
    """Conv + pool + linear: a network whose output depends on every pixel's position."""

    def __init__(self, channels: int = 3, classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(channels, 8, 5, stride=2)
        self.head = nn.Linear(8 * 14 * 14, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).flatten(1))


def test_crop_offset_is_pythons_half_to_even_round_of_half_the_excess():
    for excess in range(0, 300):
        assert crop_offset(excess) == round(excess / 2.0), excess  # torchvision: int(round(...))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
@pytest.mark.parametrize("shape", SHAPES)
def test_crop_geometry_equals_torchvisions_resize_and_centre_crop(shape, interpolation):
    x = torch.rand(2, 3, *shape, generator=torch.Generator().manual_seed(1))
    mode = MODES.get(interpolation, v2.InterpolationMode.NEAREST)
    expected = v2.CenterCrop(32)(v2.Resize(36, interpolation=mode, antialias=True)(x))
    if interpolation == "bicubic":
        expected = expected.clamp(0, 1)  # the graph stands for bounded images (torchvision clamps its uint8 output)
    got = ExportGraph(nn.Identity(), _pre("crop", interpolation), multi_label=False, input_kind="float").geometry(x)
    assert got.shape == (2, 3, 32, 32)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0, msg=f"{shape} {interpolation}")


@pytest.mark.parametrize("shape", [(32, 32), (8, 8), (40, 24)])
def test_square_geometry_resizes_the_whole_image_and_is_the_identity_at_image_size(shape):
    x = torch.rand(1, 1, *shape, generator=torch.Generator().manual_seed(2))
    graph = ExportGraph(nn.Identity(), _pre("square", mode="L"), multi_label=False, input_kind="float")
    expected = v2.Resize((32, 32), antialias=True)(x)
    got = graph.geometry(x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    if shape == (32, 32):
        assert torch.equal(got, x), "an image at image_size must pass unchanged"


def test_uint8_input_is_normalised_like_predicts_preprocessing_at_image_size():
    pre = _pre("square")
    images = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    net = TinyNet()
    graph = ExportGraph(net, pre, multi_label=False).eval()
    with torch.no_grad():
        expected = torch.softmax(net(pre.normalize(images.permute(0, 3, 1, 2))), 1)
        torch.testing.assert_close(graph(images[:1]), expected[:1], atol=1e-7, rtol=0)


def test_multi_label_graph_ends_in_a_sigmoid_and_float_input_equals_uint8_over_255():
    pre = _pre("crop")
    images = torch.randint(0, 256, (1, 40, 50, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    net = TinyNet()
    as_uint8 = ExportGraph(net, pre, multi_label=True).eval()
    as_float = ExportGraph(net, pre, multi_label=True, input_kind="float").eval()
    with torch.no_grad():
        out = as_uint8(images)
        torch.testing.assert_close(as_float(images.permute(0, 3, 1, 2).float() / 255), out, atol=1e-6, rtol=0)
        logits = net((as_uint8.geometry(images.permute(0, 3, 1, 2).float() / 255) - as_uint8.mean) / as_uint8.std)
    torch.testing.assert_close(out, torch.sigmoid(logits), atol=1e-6, rtol=0)
    assert out.sum().item() != pytest.approx(1.0)


def test_wrong_inputs_are_refused_with_a_message_naming_the_layout():
    graph = ExportGraph(TinyNet(), _pre("crop"), multi_label=False, batch=1).eval()
    for bad, words in (
        (torch.zeros(1, 3, 40, 40), "uint8"),
        (torch.zeros(1, 40, 40, 1, dtype=torch.uint8), "3 colour channel"),
        (torch.zeros(2, 40, 40, 3, dtype=torch.uint8), "batches of 1"),
    ):
        with pytest.raises(ValueError, match=words):
            graph(bad)
    fixed = ExportGraph(TinyNet(), _pre("crop"), multi_label=False, size=(48, 64)).eval()
    with pytest.raises(ValueError, match="48x64"):
        fixed(torch.zeros(1, 40, 40, 3, dtype=torch.uint8))


@pytest.mark.slow  # an ONNX export (~10 s on 2 loaded cores); the fast CLI tests export the bilinear crop
def test_onnx_graph_resizes_and_crops_any_size_like_pytorch_with_bicubic(tmp_path):
    ort = pytest.importorskip("onnxruntime")  # in the dev extra: runs in CI
    graph = ExportGraph(TinyNet(), _pre("crop", "bicubic"), multi_label=False, batch=None).eval()
    example = torch.randint(0, 256, (2, 39, 61, 3), dtype=torch.uint8)
    dims = {0: torch.export.Dim("batch", min=1), 1: torch.export.Dim("height", min=1), 2: torch.export.Dim("width")}
    path = tmp_path / "g.onnx"
    torch.onnx.export(graph, (example,), str(path), dynamo=True, dynamic_shapes={"image": dims}, external_data=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    for shape in SHAPES:
        images = rng.integers(0, 256, size=(3, *shape, 3), dtype=np.uint8)
        with torch.no_grad():
            expected = graph(torch.from_numpy(images)).numpy()
        got = session.run(None, {session.get_inputs()[0].name: images})[0]
        assert np.abs(got - expected).max() < 1e-5, shape
