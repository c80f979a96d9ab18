"""The preprocessing predict applies is the run's: bit-identical to the eval pipeline of a file source."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from transferlab.backbones.base import DataConfig
from transferlab.data.transforms import eval_transform
from transferlab.deploy.preprocess import preprocessing_for


def test_file_sources_crop_like_the_eval_pipeline_bit_for_bit():
    dc = DataConfig(input_size=224, interpolation="bicubic", crop_pct=0.875)
    pre = preprocessing_for({"name": "image_folder", "image_size": 48}, dc)
    assert (pre.geometry, pre.resize, pre.mode, pre.interpolation) == ("crop", 55, "RGB", "bicubic")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8))
    ours = pre.normalize(pre.to_uint8(image).unsqueeze(0))[0]
    assert torch.equal(ours, eval_transform(48, dc)(image))


def test_in_memory_sources_resize_the_whole_image_and_digits_are_grey():
    dc = DataConfig(in_chans=3)
    digits = preprocessing_for({"name": "digits", "image_size": 64}, dc)
    assert (digits.geometry, digits.resize, digits.mode, digits.channels) == ("square", 64, "L", 3)
    x = digits.to_uint8(Image.new("RGB", (8, 8), (10, 200, 30)))
    assert x.shape == (1, 64, 64) and x.dtype == torch.uint8
    assert digits.normalize(x.unsqueeze(0)).shape == (1, 3, 64, 64)  # grey broadcasts to the 3 channels
    synthetic = preprocessing_for({"name": "synthetic", "image_size": None}, DataConfig(input_size=40))
    assert (synthetic.geometry, synthetic.image_size, synthetic.mode) == ("square", 40, "RGB")
