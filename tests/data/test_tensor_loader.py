"""The in-memory tensor dataset and loader conventions."""

from __future__ import annotations

import torch

from transferlab.data.tensor_loader import TensorImageDataset, drop_single_last, make_loader, pass_batch


def dataset(n: int = 10) -> TensorImageDataset:
    images = torch.arange(n * 4, dtype=torch.uint8).view(n, 1, 2, 2)
    mean, std = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1), torch.tensor([1.0, 0.5, 0.25]).view(3, 1, 1)
    return TensorImageDataset(images, torch.arange(n) % 3, mean, std)


def test_batch_equals_stacked_samples_and_grey_becomes_rgb():
    ds = dataset()
    x, y = ds.__getitems__([3, 1, 4])
    stacked = torch.stack([ds[i][0] for i in (3, 1, 4)])
    assert x.shape == (3, 3, 2, 2), f"grey images should expand to 3 channels, got {tuple(x.shape)}"
    assert torch.allclose(x, stacked), "batched and per-sample paths must agree"
    expected = (ds.images[1].float() / 255 - 0.5) / 0.5
    assert torch.allclose(x[1, 1], expected[0]), "channel 1 should be normalised with its own mean/std"
    assert y.tolist() == [0, 1, 1], f"labels {y.tolist()}"


def test_loader_returns_batches_and_drops_only_a_single_last_sample():
    loader = make_loader(dataset(9), batch_size=4, shuffle=True, seed=0, collate_fn=pass_batch, train=True)
    sizes = [len(y) for _, y in loader]
    assert sizes == [4, 4], f"9 samples in batches of 4: the lone last sample should be dropped, got {sizes}"
    assert drop_single_last(65, 64) and not drop_single_last(66, 64) and not drop_single_last(1, 64), "rule"


def test_shuffle_order_depends_only_on_seed_and_epoch():
    from transferlab.data.tensor_loader import EpochShuffleSampler

    def order(sampler: EpochShuffleSampler, epoch: int) -> list[int]:
        sampler.set_epoch(epoch)
        return list(sampler)

    running = EpochShuffleSampler(50, seed=3)
    orders = [order(running, e) for e in range(4)]
    assert all(sorted(o) == list(range(50)) for o in orders)
    assert len({tuple(o) for o in orders}) == 4  # a new order every epoch
    resumed = EpochShuffleSampler(50, seed=3)  # a restarted run that starts at epoch 2
    assert order(resumed, 2) == orders[2] and order(resumed, 3) == orders[3]
    assert order(EpochShuffleSampler(50, seed=4), 0) != orders[0]
