"""Fast loading of in-memory image tensors: one indexing op per batch instead of one collate per sample.

Images are kept as uint8 ``(N, C, H, W)`` at their final size (a quarter of float32's memory: digits at 224 px
take 90 MB, not 1 GB) and are converted, expanded to the model's channels and normalised per batch — a few
element-wise ops on a batch, negligible next to a forward pass. ``DataLoader`` calls ``__getitems__`` with a
whole batch of indices, so a batch costs one ``index_select`` plus, only when augmentation is on, a loop of
per-sample transforms (per sample so that every image gets its own random crop/flip).
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.context
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from transferlab.data.samplers import BalancedSampler


class TensorImageDataset(Dataset):
    """Images and labels held in memory (or memory-mapped); batches come out normalised, with ``out_chans`` channels.

    Args:
        images: uint8 tensor ``(N, C, H, W)`` with ``C`` 1 or ``out_chans`` (grey images are expanded); any
            strides (a channels-last view of a memory-mapped file is read in place, see
            :mod:`transferlab.data.decoded_cache`).
        labels: ``(N,)`` class indices (kept as int64), or ``(N, K)`` float multi-hot vectors of multi-label
            data (held as float32).
        mean: Normalisation mean, shape ``(out_chans, 1, 1)``.
        std: Normalisation std, shape ``(out_chans, 1, 1)``.
        augment: Per-sample transform of a uint8 ``(C, H, W)`` tensor, or ``None``. It may change the size (a
            random resized crop of a larger stored image) as long as every output has the same size.
        normalize: ``False``: batches stay uint8 images (with the stored channel count) and the consumer
            normalises them on its device (:func:`~transferlab.data.transforms.normalize_images`; the staged
            module does it after the batch reaches the GPU): a quarter of the bytes through worker shared memory
            and the host → GPU copy, and no float pass on the host. The decoded-image cache serves this way.
        exact: Normalise with torchvision's own op sequence (``ToDtype(float32, scale=True)`` then
            ``Normalize``: multiply by ``1/255``, subtract the mean, divide by the std), so that batches are
            bit-identical to a live PIL → torchvision pipeline. The default folds the three into one
            ``addcmul``, which may differ in the last bit.

    Raises:
        ValueError: on mismatched shapes or dtypes (a programming error, not user input).

    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        exact: bool = False,
        normalize: bool = True,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.out_chans = mean.shape[0]
        if images.shape[1] not in (1, self.out_chans):
            raise ValueError(f"images have {images.shape[1]} channels; the model wants {self.out_chans}")
        if labels.ndim == 2:
            labels = labels.float()  # multi-hot targets of a multi-label task: casting to long would break them
        elif labels.ndim == 1:
            labels = labels.long()
        else:
            raise ValueError(f"labels must be (N,) class indices or (N, K) float, got {labels.dtype} {labels.shape}")
        self.images = images
        self.labels = labels
        self.augment = augment
        self.exact = exact
        self.normalize = normalize
        self._mean, self._std = mean.float(), std.float()
        # Fold 1/255 into the normalisation: (x/255 - mean) / std == x * scale + shift, one fused pass.
        self._scale = (1.0 / (255.0 * std)).float()
        self._shift = (-mean / std).float()

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        """Where the images are held (and batches are cut)."""
        return self.images.device

    @property
    def nbytes(self) -> int:
        """Memory the images and labels take."""
        return self.images.nbytes + self.labels.nbytes

    def to(self, device: torch.device | str) -> TensorImageDataset:
        """Hold images, labels and the normalisation on ``device`` (in place; returns ``self``).

        On a GPU, batches are then cut, converted and normalised there: no host → device copy of images
        per step (airbench-style). Per-sample augmentation runs on the device too (torchvision v2 ops take
        tensors on any device).
        """
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        self._scale, self._shift = self._scale.to(device), self._shift.to(device)
        self._mean, self._std = self._mean.to(device), self._std.to(device)
        return self

    @staticmethod
    def _new_float(shape: Sequence[int], device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """An empty tensor (float32 unless said); in a DataLoader worker, in shared memory (as ``default_collate``).

        A batch in shared memory goes to the main process as a handle; a plain one would be copied there first.
        """
        if device.type == "cpu" and get_worker_info() is not None:
            proto = torch.empty(0, dtype=dtype)
            return proto.new(proto._typed_storage()._new_shared(math.prod(shape))).view(*shape)
        return torch.empty(tuple(shape), dtype=dtype, device=device)

    def _finish(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 image(s) → normalised float with ``out_chans`` channels (written into ``out`` when given).

        With ``normalize=False`` the uint8 images are returned (copied into ``out`` when given).
        """
        if not self.normalize:
            return x if out is None else out.copy_(x)
        if out is None and not self.exact:
            # Broadcasting against the (out_chans, 1, 1) statistics turns a grey channel into out_chans channels.
            return torch.addcmul(self._shift, x.float(), self._scale)
        if out is None:
            out = self._new_float((*x.shape[:-3], self.out_chans, *x.shape[-2:]), x.device)
        out.copy_(x)  # converts and expands grey to out_chans (exact in float32); shared memory in a worker
        if self.exact:
            # torchvision's ToDtype(scale=True) is ``.to(float32).mul_(1 / 255)``, Normalize ``.sub(mean).div_(std)``;
            # the same ops in the same order give the same bits (element-wise, so per batch = per sample).
            return out.mul_(1.0 / 255).sub_(self._mean).div_(self._std)
        return out.mul_(self._scale).add_(self._shift)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index]
        if self.augment is not None:
            x = self.augment(x)
        return self._finish(x), self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return a whole collated batch ``(images, labels)`` (``DataLoader`` passes a batch of indices)."""
        idx = index_on(indices, self.images.device)
        if self.augment is None:
            return self._finish(self.images.index_select(0, idx)), self.labels.index_select(0, idx)
        # Each sample is cut from the stored images directly (a view: no batch copy at the stored size) and
        # normalised into its slot of the batch while it is in the CPU's cache (one pass over the batch's memory
        # instead of four; fresh batch memory costs a page fault per 4 KiB, so it is touched once).
        first = self.augment(self.images[int(indices[0])])
        if self.normalize:
            out = self._new_float((len(indices), self.out_chans, *first.shape[-2:]), first.device)
        else:
            out = self._new_float((len(indices), *first.shape[-3:]), first.device, torch.uint8)
        self._finish(first, out[0])
        for k, i in enumerate(indices[1:], start=1):
            self._finish(self.augment(self.images[int(i)]), out[k])
        return out, self.labels.index_select(0, idx)


def index_on(indices: Sequence[int], device: torch.device) -> torch.Tensor:
    """A batch's indices as a tensor on ``device`` (where the data set's tensors are)."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    if device.type == "cuda":
        # From pinned memory the copy is queued on the stream and the host goes on: a copy from pageable
        # memory would wait for the GPU to finish its queued work, a sync per batch.
        return idx.pin_memory().to(device, non_blocking=True)
    return idx.to(device)


def pass_batch(batch: Any) -> Any:
    """Collate function for :class:`TensorImageDataset`: its ``__getitems__`` already returns a batch.

    Module-level (not a lambda) so that worker processes and Lightning's DDP loader rebuild can pickle it.
    """
    return batch


class EpochShuffleSampler(Sampler[int]):
    """A shuffled order that depends only on ``(seed, epoch)``, not on how many epochs ran before.

    Lightning calls :meth:`set_epoch` at the start of every epoch (as it does for ``DistributedSampler``).
    A run resumed at epoch k therefore sees exactly the orders an uninterrupted run would have seen, which a
    generator advanced once per epoch can not give after a restart.

    Args:
        length: Size of the data set.
        seed: Seed of the orders.
    """

    def __init__(self, length: int, seed: int) -> None:
        self.length = int(length)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch`` (0-based, per ``Trainer.fit``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())


def drop_single_last(n: int, batch_size: int) -> bool:
    """Whether to drop the last training batch: only when it would hold one sample.

    BatchNorm in training mode cannot normalise a batch of one (it raises), which few-shot subsets hit easily
    (e.g. 5 shots × 13 classes = 65 with batch 64). Dropping one sample per epoch costs nothing.
    """
    return n > batch_size and n % batch_size == 1


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    collate_fn: Callable[[Any], Any] | None = None,
    train: bool = False,
    sample_weights: np.ndarray | None = None,
) -> DataLoader:
    """Build a DataLoader with the package's conventions.

    Args:
        dataset: The split's dataset.
        batch_size: Samples per batch.
        shuffle: Shuffle every epoch (:class:`EpochShuffleSampler`: the order depends on seed and epoch only).
        seed: Seed of the shuffling order.
        num_workers: Worker processes; ``persistent_workers`` is set when > 0 (no re-spawn each epoch).
        pin_memory: Pin batches in page-locked memory.
        collate_fn: Collate function (``None`` = PyTorch's default).
        train: Whether this is the training loader (then a last batch of one sample is dropped).
        sample_weights: With ``shuffle``: draw samples with replacement by these weights
            (:class:`~transferlab.data.samplers.BalancedSampler`, ``data.sampler=balanced``) instead of a shuffle.

    """
    sampler: Sampler[int] | None = None
    if shuffle:
        sampler = (
            EpochShuffleSampler(len(dataset), seed)  # type: ignore[arg-type]
            if sample_weights is None
            else BalancedSampler(sample_weights, seed)
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        collate_fn=collate_fn,
        drop_last=train and drop_single_last(len(dataset), batch_size),  # type: ignore[arg-type]
        multiprocessing_context=worker_context(num_workers),
    )


def worker_context(num_workers: int) -> multiprocessing.context.BaseContext | None:
    """The start method of DataLoader workers: the platform's own, never the one a launcher installed.

    A job of ``hydra/launcher=parallel`` runs inside a joblib (loky) worker, which replaces the default
    multiprocessing context by loky's; DataLoader workers started through it fail (``'Process' object has no
    attribute 'env'``). ``fork`` on Linux (what PyTorch has always used there: workers share the parent's
    memory maps), ``spawn`` elsewhere (macOS and Windows, where forking a process with threads is unsafe).
    """
    if num_workers <= 0:
        return None
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] → uint8 (rounded, clamped)."""
    return images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
