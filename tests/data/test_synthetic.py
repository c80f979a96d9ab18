"""The synthetic data module: shapes, determinism and learnable labels."""

from __future__ import annotations

import torch

from transferlab.data import SyntheticDataModule, build_data


def synthetic(data_config, **cfg) -> SyntheticDataModule:
    dm = build_data({"name": "synthetic", "image_size": 8, **cfg}, data_config)
    dm.setup()
    return dm


def test_shapes_and_sizes(data_config):
    dm = synthetic(data_config, num_classes=4, num_samples={"train": 40, "val": 12, "test": 8}, batch_size=16)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (40, 12, 8), f"sizes: {dm.describe()}"
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 8, 8) and x.dtype == torch.float32, f"batch {tuple(x.shape)} {x.dtype}"
    assert dm.num_classes == 4 and set(dm.train_set.labels.tolist()) == set(range(4)), f"labels of {dm.describe()}"


def test_deterministic_per_seed(data_config):
    a, b, c = synthetic(data_config, seed=1), synthetic(data_config, seed=1), synthetic(data_config, seed=2)
    assert torch.equal(a.train_set.images, b.train_set.images), "same seed must give the same images"
    assert not torch.equal(a.train_set.images, c.train_set.images), "different seeds must give different images"
    assert not torch.equal(a.train_set.images[:128], a.val_set.images), "train and val must be different draws"


def test_labels_are_learnable(data_config):
    dm = synthetic(data_config, num_classes=5)
    train_x, train_y = dm.train_set.__getitems__(range(len(dm.train_set)))
    test_x, test_y = dm.test_set.__getitems__(range(len(dm.test_set)))
    means = torch.stack([train_x[train_y == k].mean(0) for k in range(5)]).flatten(1)
    pred = torch.cdist(test_x.flatten(1), means).argmin(1)
    acc = (pred == test_y).float().mean().item()
    assert acc > 0.9, f"a nearest-class-mean classifier should fit the synthetic data, got accuracy {acc:.2f}"


def test_multi_label_rows_are_multi_hot_imbalanced_and_learnable(data_config):
    from transferlab.model.multilabel_metrics import mean_average_precision

    dm = synthetic(data_config, num_classes=5, multi_label=True)
    labels = dm.train_set.labels
    assert dm.multi_label and labels.dtype == torch.float32 and labels.shape == (512, 5), (labels.dtype, labels.shape)
    assert set(labels.unique().tolist()) == {0.0, 1.0} and dm.class_names[0] == "label_0"
    frequencies = labels.mean(0)
    assert frequencies[0] > 0.4 and frequencies[-1] < 0.2 and frequencies[0] > frequencies[-1], frequencies
    assert (labels.sum(1) > 1).any() and (labels.sum(1) == 0).any(), "several labels per image, and none"
    assert dm.train_targets().shape == (512, 5)
    _, y = next(iter(dm.train_dataloader()))
    assert y.dtype == torch.float32 and y.shape == (64, 5), f"a batch's labels: {y.dtype} {tuple(y.shape)}"
    # a linear model on the pixels ranks every label: the images carry their labels' patterns
    train_x, train_y = dm.train_set.__getitems__(range(512))
    test_x, test_y = dm.test_set.__getitems__(range(len(dm.test_set)))
    design = torch.cat([train_x.flatten(1), torch.ones(512, 1)], 1)
    solution = torch.linalg.lstsq(design, train_y).solution
    scores = torch.cat([test_x.flatten(1), torch.ones(len(test_x), 1)], 1) @ solution
    assert mean_average_precision(scores.numpy(), test_y.numpy()) > 0.9
    again = synthetic(data_config, num_classes=5, multi_label=True)
    assert torch.equal(again.train_set.labels, labels) and torch.equal(again.train_set.images, dm.train_set.images)
