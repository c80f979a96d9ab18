"""The in-memory tensor dataset and loader conventions."""

from __future__ import annotations

import pytest
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


def test_exact_normalisation_is_bit_identical_to_torchvision():
    from torchvision.transforms import v2

    images = torch.randint(0, 256, (5, 3, 7, 6), dtype=torch.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    ds = TensorImageDataset(
        images, torch.arange(5), torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1), exact=True
    )
    live = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    x, _ = ds.__getitems__([4, 0, 2])
    assert torch.equal(x, torch.stack([live(images[i]) for i in (4, 0, 2)])), "batch path must match torchvision"
    assert torch.equal(ds[1][0], live(images[1])), "single-sample path must match torchvision"
    grey = TensorImageDataset(images[:, :1], torch.arange(5), ds._mean, ds._std, exact=True)
    assert torch.equal(grey[3][0], live(images[3, :1].expand(3, -1, -1))), "grey expands like an RGB conversion"


def test_augment_may_change_the_size_and_multi_label_targets_stay_float():
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    targets = torch.tensor([[1, 0, 1], [0, 1, 0]] * 3, dtype=torch.float32)
    mean, std = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
    ds = TensorImageDataset(images, targets, mean, std, augment=lambda img: img[:, 1:6, 2:7])
    x, y = ds.__getitems__([5, 1, 3])
    assert x.shape == (3, 3, 5, 5) and ds[0][0].shape == (3, 5, 5), f"crops of 5x5 expected, got {tuple(x.shape)}"
    assert torch.allclose(x[1], images[1, :, 1:6, 2:7].float() / 255), "each sample gets its own crop"
    assert y.dtype == torch.float32 and torch.equal(y, targets[[5, 1, 3]]), f"multi-hot labels {y.dtype}"
    assert dataset().labels.dtype == torch.int64, "class indices stay int64"


def _iterate_with_workers() -> int:
    from transferlab.data.tensor_loader import make_loader

    dataset = torch.utils.data.TensorDataset(torch.arange(8.0))
    return sum(len(b[0]) for b in make_loader(dataset, batch_size=4, shuffle=True, seed=0, num_workers=1))


@pytest.mark.slow  # starts a loky worker and a DataLoader worker in it (~10 s)
def test_loader_workers_start_inside_a_joblib_launcher_job():
    # hydra/launcher=parallel runs each job in a loky worker, whose default multiprocessing context cannot start
    # DataLoader workers ('Process' object has no attribute 'env'); make_loader names the platform's own
    from joblib import Parallel, delayed

    assert Parallel(n_jobs=2, backend="loky")(delayed(_iterate_with_workers)() for _ in range(2)) == [8, 8]
