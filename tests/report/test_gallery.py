"""The top-losses gallery: images back to pixels (uint8 and normalised float), titles, grid, a valid PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.report.gallery import display_image, grid_shape, short, title, top_losses_gallery
from transferlab.report.plots import read_plot_data

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def test_a_normalised_float_image_and_its_uint8_source_show_the_same_pixels():
    rng = np.random.default_rng(0)
    raw = torch.from_numpy(rng.integers(0, 256, (3, 5, 7), dtype=np.uint8))
    normalised = (raw.float() / 255 - MEAN) / STD  # what the live pipeline and in-memory sets serve
    from_float, from_uint8 = display_image(normalised, MEAN, STD), display_image(raw, MEAN, STD)
    assert from_float.shape == (5, 7, 3) and from_uint8.shape == (5, 7, 3)
    assert np.allclose(from_float, raw.permute(1, 2, 0).numpy() / 255, atol=1e-6)
    assert np.allclose(from_uint8, from_float, atol=1e-6)


def test_grey_images_come_back_two_dimensional_also_when_expanded_to_three_channels():
    grey = torch.linspace(0, 1, 12).view(1, 3, 4)
    expanded = ((grey.expand(3, 3, 4) - MEAN.mean()) / STD.mean()).contiguous()
    shown = display_image(expanded, MEAN.mean().view(1, 1, 1), STD.mean().view(1, 1, 1))
    assert shown.shape == (3, 4) and np.allclose(shown, grey[0].numpy(), atol=1e-6)
    assert display_image(torch.full((1, 2, 2), 255, dtype=torch.uint8), MEAN, STD).shape == (2, 2)
    with pytest.raises(ValueError, match="one \\(C, H, W\\) image"):
        display_image(torch.zeros(2, 3, 4, 4), MEAN, STD)


def test_titles_cut_long_names_and_grids_shrink_to_few_images():
    assert short("a" * 30) == "a" * 17 + "…" and short("cat") == "cat"
    row = {"id": "x", "true": "golden_retriever_puppy", "predicted": "cat", "p_predicted": 0.934, "loss": 2.5}
    text, right = title(row)
    assert text.splitlines() == ["true: golden_retriever_…", "pred: cat", "p=0.93 · loss 2.50"] and not right
    multi = {"id": "y", "true": ["a", "b"], "predicted": ["b", "c"], "worst_label": "a", "p_worst": 0.1, "loss": 1.0}
    assert title(multi)[0].splitlines()[:2] == ["missed: a", "extra: c"]
    assert grid_shape(3) == (1, 3) and grid_shape(16) == (4, 4) and grid_shape(5) == (2, 4) and grid_shape(1) == (1, 1)


def test_the_gallery_is_a_valid_png_of_its_grid_with_its_rows_embedded(tmp_path):
    images = [np.random.default_rng(i).random((8, 8)) for i in range(3)]
    rows = [
        {"id": f"s{i}", "true": "a", "predicted": "b", "p_predicted": 0.9, "p_true": 0.05, "loss": 3.0 - i}
        for i in range(3)
    ]
    path = top_losses_gallery(images, rows, tmp_path / "top.png", "top 3 losses")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size == (710, 365), image.size  # 3 columns of 2.3 in + margins, 1 row of 2.95 in + heading
    data = read_plot_data(path)
    assert (data["rows"], data["columns"]) == (1, 3) and [s["id"] for s in data["samples"]] == ["s0", "s1", "s2"]
    assert not list(tmp_path.glob("*.tmp")), "written atomically"
    with pytest.raises(ValueError, match="2 images for 3"):
        top_losses_gallery(images[:2], rows, tmp_path / "bad.png", "x")
