"""The digits data module: splits, subsets, shots, normalisation and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from transferlab.backbones.base import DataConfig
from transferlab.data import DigitsDataModule, build_data
from transferlab.errors import ConfigError

N_DIGITS = 1797


def digits(data_config: DataConfig, setup: bool = True, **cfg: Any) -> DigitsDataModule:
    dm = build_data({"name": "digits", "image_size": 8, **cfg}, data_config)
    assert isinstance(dm, DigitsDataModule), f"build_data returned {type(dm).__name__}, not DigitsDataModule"
    if setup:
        dm.setup()
    return dm


def labels(ds) -> np.ndarray:
    return ds.labels.numpy()


def test_split_sizes_cover_all_digits_once(data_config):
    dm = digits(data_config)
    sizes = [len(dm.train_set), len(dm.val_set), len(dm.test_set)]
    assert sum(sizes) == N_DIGITS, f"splits {sizes} do not add up to the {N_DIGITS} digits"
    assert abs(sizes[2] - 0.2 * N_DIGITS) <= 10, f"test size {sizes[2]} is not ~20% of {N_DIGITS}"
    assert abs(sizes[1] - 0.15 * N_DIGITS) <= 10, f"val size {sizes[1]} is not ~15% of {N_DIGITS}"
    assert dm.num_classes == 10 and dm.class_names == [str(d) for d in range(10)], (
        f"expected 10 classes '0'..'9', got {dm.class_names}"
    )
    line = dm.describe()
    assert f"train {sizes[0]}" in line and f"test {sizes[2]}" in line and "\n" not in line, (
        f"describe() should be one line with the split sizes, got {line!r}"
    )


def test_splits_are_stratified(data_config):
    dm = digits(data_config)
    full = np.bincount(np.concatenate([labels(dm.train_set), labels(dm.val_set), labels(dm.test_set)]))
    for name, ds, fraction in (("test", dm.test_set, 0.2), ("val", dm.val_set, 0.15)):
        counts = np.bincount(labels(ds), minlength=10)
        expected = full * fraction
        assert np.all(np.abs(counts - expected) <= 1), f"{name} counts {counts} are not {fraction} of {full}"


def test_class_subset_is_remapped_in_given_order(data_config):
    dm = digits(data_config, classes=[5, 6, 7, 8, 9])
    assert dm.num_classes == 5 and dm.class_names == ["5", "6", "7", "8", "9"], (
        f"classes=[5..9] should give class_names '5'..'9', got {dm.class_names}"
    )
    for split in (dm.train_set, dm.val_set, dm.test_set):
        assert set(labels(split).tolist()) == set(range(5)), f"labels {set(labels(split).tolist())} are not 0..4"


def test_class_subset_keeps_each_digits_test_samples(data_config):
    """A digit's test images are the same whichever other classes are kept; labels follow the given order."""
    full = digits(data_config)
    sub = digits(data_config, classes=[9, 5])
    assert sub.class_names == ["9", "5"], f"class order should be kept, got {sub.class_names}"
    for new, digit in ((0, 9), (1, 5)):
        a = sub.test_set.images[sub.test_set.labels == new]
        b = full.test_set.images[full.test_set.labels == digit]
        assert torch.equal(a, b), f"test images of digit {digit} (label {new} in the subset) differ from the full set"


def test_shots_per_class_exact_counts(data_config):
    dm = digits(data_config, shots_per_class=5)
    counts = np.bincount(labels(dm.train_set), minlength=10)
    assert counts.tolist() == [5] * 10, f"shots_per_class=5 should give 5 per class, got {counts.tolist()}"


def test_label_fraction_subsamples_each_class(data_config):
    full = np.bincount(labels(digits(data_config).train_set))
    part = np.bincount(labels(digits(data_config, label_fraction=0.1).train_set))
    assert np.all(np.abs(part - full * 0.1) <= 1) and part.min() >= 1, (
        f"label_fraction=0.1 gave {part.tolist()} from {full.tolist()}"
    )


def test_test_and_val_splits_do_not_depend_on_shots(data_config):
    base = digits(data_config)
    for kw in ({"shots_per_class": 3}, {"shots_per_class": 20}, {"label_fraction": 0.5}):
        other = digits(data_config, **kw)
        for split in ("test_set", "val_set"):
            a, b = getattr(base, split), getattr(other, split)
            assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels), (
                f"{split} changed with {kw}: shot counts must be compared on the same split"
            )


def test_fewer_shots_are_a_subset_of_more_shots(data_config):
    small = digits(data_config, shots_per_class=3).train_set
    large = digits(data_config, shots_per_class=10).train_set
    rows = {tuple(img.flatten().tolist()) for img in large.images}
    assert all(tuple(img.flatten().tolist()) in rows for img in small.images), "3-shot set is not inside 10-shot set"


def test_same_seed_same_splits_other_seed_other_splits(data_config):
    a, b, c = digits(data_config, seed=1), digits(data_config, seed=1), digits(data_config, seed=2)
    for split in ("train_set", "val_set", "test_set"):
        assert torch.equal(getattr(a, split).images, getattr(b, split).images), f"seed 1 twice: {split} differs"
    assert not torch.equal(a.test_set.images, c.test_set.images), "seeds 1 and 2 gave the same test split"


def test_shuffled_order_is_seeded(data_config):
    first = [y for _, y in digits(data_config, seed=4).train_dataloader()]
    again = [y for _, y in digits(data_config, seed=4).train_dataloader()]
    assert all(torch.equal(p, q) for p, q in zip(first, again, strict=True)), "same seed gave another batch order"
    fixed = torch.cat([y for _, y in digits(data_config).test_dataloader()])
    assert torch.equal(fixed, digits(data_config).test_set.labels), "test loader must not shuffle"


def test_normalisation_uses_data_config_stats():
    dc = DataConfig(input_size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x, y = next(iter(digits(dc).train_dataloader()))
    assert x.dtype == torch.float32 and y.dtype == torch.int64, f"batch dtypes {x.dtype}, {y.dtype}"
    assert x.min() >= -1.0 - 1e-5 and x.max() <= 1.0 + 1e-5, (
        f"mean/std 0.5 must map to [-1, 1], got {x.min()}..{x.max()}"
    )
    assert x.min() < -0.99 and x.max() > 0.9, f"expected background -1 and strokes near 1, got {x.min()}..{x.max()}"
    dc = DataConfig(input_size=8, mean=(0.1, 0.2, 0.3), std=(0.2, 0.4, 0.6))
    x, _ = next(iter(digits(dc).train_dataloader()))
    background = x.amin(dim=(0, 2, 3))
    assert torch.allclose(background, torch.tensor([-0.5, -0.5, -0.5]), atol=1e-5), (
        f"black background should be -mean/std per channel, got {background.tolist()}"
    )


def test_image_size_and_three_channels(data_config):
    x, _ = next(iter(digits(data_config, image_size=12).val_dataloader()))
    assert x.shape[1:] == (3, 12, 12), f"image_size=12 should give (3, 12, 12) images, got {tuple(x.shape[1:])}"
    x, _ = next(iter(digits(data_config, image_size=None).val_dataloader()))
    assert x.shape[-1] == data_config.input_size, f"image_size=null should use input_size, got {x.shape[-1]}"


def test_num_classes_known_before_setup(data_config):
    dm = digits(data_config, setup=False, classes=[1, 2, 3])
    assert dm.num_classes == 3 and "not set up" in dm.describe(), f"before setup: {dm.num_classes}, {dm.describe()}"


@pytest.mark.parametrize(
    ("cfg", "needles"),
    [
        ({"classes": [3, 10]}, ["data.classes", "10", "0..9"]),
        ({"classes": [3, 3]}, ["data.classes", "twice"]),
        (
            {"shots_per_class": 5, "label_fraction": 0.5},
            ["data.shots_per_class=5", "data.label_fraction=0.5"],
        ),
        ({"shot_per_class": 5}, ["data.shot_per_class", "shots_per_class"]),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, ["data.val_fraction", "data.test_fraction"]),
        ({"label_fraction": 0}, ["data.label_fraction", "(0.0, 1.0]"]),
        ({"batch_size": 0}, ["data.batch_size", "≥ 1"]),
    ],
)
def test_config_errors_name_the_key(data_config, cfg, needles):
    with pytest.raises(ConfigError) as err:
        digits(data_config, setup=False, **cfg)
    assert all(n in str(err.value) for n in needles), f"error {err.value!s} should mention {needles}"


def test_too_many_shots_names_the_class_and_count(data_config):
    dm = digits(data_config, setup=False, shots_per_class=500)
    with pytest.raises(ConfigError) as err:
        dm.setup()
    assert "data.shots_per_class=500" in str(err.value) and "only" in str(err.value), f"unclear: {err.value}"
