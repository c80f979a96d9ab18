"""Augmentation: parsing, on changes training batches, off is deterministic, eval never augments."""

from __future__ import annotations

import pytest
import torch

from transferlab.data import build_data
from transferlab.data.transforms import AugmentSpec, parse_augment
from transferlab.errors import ConfigError

ALL_ON = {
    "random_resized_crop": 0.5,
    "hflip": True,
    "rotate": 20,
    "color_jitter": 0.4,
    "trivial_augment": True,
    "rand_augment": 9,
    "random_erasing": 0.5,
}


def test_parse_defaults_off_and_values():
    assert parse_augment(None) == AugmentSpec() and not AugmentSpec().enabled, "no augment dict = all off"
    spec = parse_augment(ALL_ON)
    assert spec.enabled and spec.random_resized_crop == 0.5 and spec.rotate == 20.0, f"parsed {spec}"
    assert not parse_augment({"random_resized_crop": None, "hflip": False, "rotate": 0}).enabled, "zeros are off"
    assert spec.rand_augment == 9 and spec.random_erasing == 0.5
    assert parse_augment({"rand_augment": 9}).enabled and parse_augment({"random_erasing": 0.1}).enabled
    assert not parse_augment({"rand_augment": 0, "random_erasing": 0}).enabled


def test_random_erasing_blanks_one_box_and_rand_augment_changes_the_image():
    from torchvision.transforms import v2

    from transferlab.data.transforms import augment_ops

    torch.manual_seed(0)
    image = torch.rand(3, 16, 16) * 0.5 + 0.25  # no zero pixel before erasing
    (erase,) = augment_ops(AugmentSpec(random_erasing=1.0), 16, v2.InterpolationMode.BILINEAR)
    zero = (erase(image) == 0).all(dim=0)
    rows, cols = zero.any(dim=1).nonzero(), zero.any(dim=0).nonzero()
    assert zero.any() and int(zero.sum()) == len(rows) * len(cols), "one filled box"
    (rand,) = augment_ops(AugmentSpec(rand_augment=15), 16, v2.InterpolationMode.BILINEAR)
    assert any(not torch.equal(rand(image), image) for _ in range(5))


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"flip": True}, "data.augment.flip"),
        ({"rotate": -5}, "data.augment.rotate"),
        ({"color_jitter": 2}, "data.augment.color_jitter"),
        ({"random_resized_crop": 0}, "data.augment.random_resized_crop"),
        ({"hflip": "yes"}, "data.augment.hflip"),
        ({"rand_augment": 2.5}, "data.augment.rand_augment"),
        ({"rand_augment": 31}, "data.augment.rand_augment"),
        ({"random_erasing": 1.5}, "data.augment.random_erasing"),
    ],
)
def test_bad_augment_names_the_key(raw, needle):
    with pytest.raises(ConfigError) as err:
        parse_augment(raw)
    assert needle in str(err.value), f"error should name {needle}: {err.value}"


def test_unknown_key_through_the_factory(data_config):
    with pytest.raises(ConfigError) as err:
        build_data({"name": "digits", "augment": {"flip": True}}, data_config)
    assert "data.augment.flip" in str(err.value) and "hflip" in str(err.value), f"unclear: {err.value}"


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_tensor_augmentation_changes_train_not_eval(data_config, name):
    dm = build_data({"name": name, "image_size": 12, "augment": ALL_ON}, data_config)
    dm.setup()
    assert dm.augment_enabled, "augment_enabled should be true with augmentation on"
    idx = list(range(16))
    a, _ = dm.train_set.__getitems__(idx)
    b, _ = dm.train_set.__getitems__(idx)
    assert a.shape == (16, 3, 12, 12), f"augmented batch keeps its shape, got {tuple(a.shape)}"
    assert not torch.equal(a, b), "two augmented draws of the same images should differ"
    v1, _ = dm.val_set.__getitems__(idx)
    v2, _ = dm.val_set.__getitems__(idx)
    assert torch.equal(v1, v2), "val batches must never be augmented"


def test_no_augmentation_is_deterministic(data_config):
    dm = build_data({"name": "digits", "image_size": 8}, data_config)
    dm.setup()
    assert not dm.augment_enabled, "digits.yaml-like defaults must have augmentation off"
    idx = list(range(16))
    a, _ = dm.train_set.__getitems__(idx)
    b, _ = dm.train_set.__getitems__(idx)
    assert torch.equal(a, b), "without augmentation the same indices must give the same batch"


def test_file_augmentation_changes_train_images(make_tree, data_config):
    root = make_tree({"a": 4, "b": 4})
    cfg = {"name": "image_folder", "root": str(root), "num_workers": 0, "augment": ALL_ON}
    dm = build_data(cfg, data_config)
    dm.setup()
    torch.manual_seed(0)
    draws = [dm.train_set[0][0] for _ in range(4)]
    assert draws[0].shape == (3, 16, 16), f"augmented image shape {tuple(draws[0].shape)}"
    assert any(not torch.equal(draws[0], d) for d in draws[1:]), "augmented draws of one image should differ"
    assert torch.equal(dm.val_set[0][0], dm.val_set[0][0]), "val images must never be augmented"
