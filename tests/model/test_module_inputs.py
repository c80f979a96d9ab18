"""uint8 batches (the decoded-image cache's) are normalised by the module on its device, bit-identical to live."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from transferlab.backbones.registry import create_backbone
from transferlab.data.tensor_loader import TensorImageDataset
from transferlab.data.transforms import normalization
from transferlab.model.module import classifier


def test_a_uint8_batch_is_normalised_exactly_as_torchvision_and_a_float_batch_is_left_alone():
    backbone = create_backbone("small_cnn")
    module = classifier(backbone, 3)
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0])
    x, y = module.on_after_batch_transfer((images, labels), 0)
    dc = backbone.data_config
    live = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(dc.mean), list(dc.std))])
    assert x.dtype == torch.float32 and torch.equal(x, torch.stack([live(img) for img in images]))
    assert torch.equal(y, labels)
    floats = torch.randn(4, 3, 8, 8)
    assert module.on_after_batch_transfer((floats, labels), 0)[0] is floats


def test_a_raw_tensor_dataset_serves_uint8_batches_that_the_module_turns_into_the_normalised_ones():
    backbone = create_backbone("small_cnn")
    mean, std = normalization(backbone.data_config)
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(6) % 3
    exact = TensorImageDataset(images, labels, mean, std, exact=True)
    raw = TensorImageDataset(images, labels, mean, std, exact=True, normalize=False)
    batch = raw.__getitems__([5, 0, 3])
    assert batch[0].dtype == torch.uint8
    module = classifier(backbone, 3)
    assert torch.equal(module.on_after_batch_transfer(batch, 0)[0], exact.__getitems__([5, 0, 3])[0])
