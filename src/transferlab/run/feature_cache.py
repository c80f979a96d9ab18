"""Feature cache: a plan step whose backbone is entirely frozen trains the head on features computed once.

A frozen backbone in eval mode maps each image to the same features every epoch, so recomputing them is
wasted work — usually almost all of a linear probe's time. When a step qualifies (:func:`cache_blocker`
returns ``None``), the engine computes the features of the train, val and test splits once (eval mode, no
grad, under the run's precision), keeps them in memory for the later steps and stages of the run and writes
them to ``<feature_cache.dir>/<key>.safetensors`` for the other jobs of a sweep. The key hashes everything
that changes the features: the backbone's architecture and exact weights, the data selection and
preprocessing, the feature layer and the precision. The cached loader keeps the live loader's batch size,
shuffling seed and last-batch rule, so the head sees the same batches in the same order.

Files are safetensors (no pickle) written atomically; an unreadable file is recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset

from transferlab.data.base import fits_on_device
from transferlab.data.tensor_loader import index_on, make_loader, pass_batch
from transferlab.data.transforms import normalization, normalize_images
from transferlab.run.distributed import state_digest

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FORMAT = "transferlab.features.v1"
# Data keys that change how batches are served, not which images or how they are preprocessed.
LOADER_ONLY_KEYS = ("batch_size", "num_workers", "pin_memory", "on_device", "sampler", "decoded_cache")


def label_tensor(labels: torch.Tensor) -> torch.Tensor:
    """Labels as the tasks read them: ``(N,)`` class indices as int64, ``(N, L)`` multi-hot rows as float32."""
    return labels.float() if labels.ndim == 2 else labels.long()


class FeatureDataset(Dataset):
    """Cached features and labels; a batch is one ``index_select`` (like :class:`TensorImageDataset`)."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features = features
        self.labels = label_tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = index_on(indices, self.features.device)
        return self.features.index_select(0, idx), self.labels.index_select(0, idx)


@dataclass
class CachedFeatures:
    """Features and labels of the splits asked for (and any others held), and where they came from.

    ``source``: ``computed``, ``memory``, ``disk``, or ``memory+computed`` / ``disk+computed`` when some splits
    were held and the others computed.
    """

    key: str
    tensors: dict[str, torch.Tensor]
    source: str
    seconds: float

    def dataset(self, split: str) -> FeatureDataset:
        """The split as a dataset of ``(features, label)``."""
        return FeatureDataset(self.tensors[f"{split}.features"], self.tensors[f"{split}.labels"])


def cache_blocker(module: nn.Module, data: Any, enabled: bool) -> str | None:
    """Why the current step can not train on cached features, or ``None`` when it can.

    Call after ``module.set_step(step)`` and ``module.train()``: the check looks at what really trains.
    """
    if not enabled:
        return "feature_cache.enabled=false"
    task = getattr(module, "task", None)
    reason = task.cache_blocker() if task is not None else None
    if reason is not None:
        return reason
    if getattr(module, "regularizer", None) is not None:
        return "a regularizer reads the inputs"
    if getattr(module, "mixer", None) is not None:
        return "mixup/CutMix mixes the images of every batch"
    backbone = module.backbone  # type: ignore[attr-defined]
    if any(p.requires_grad for p in backbone.parameters()):
        return "backbone parameters train in this step"
    if any(m.training for m in backbone.modules()):
        return "part of the backbone runs in training mode (BatchNorm statistics would move)"
    if not all(getattr(data, f"{split}_set", None) is not None for split in SPLITS):
        return f"{type(data).__name__} has no in-memory splits"
    if getattr(data, "augment_enabled", False):
        return "augmentation is on (features differ every epoch)"
    return None


def cache_key(
    backbone: nn.Module, data_cfg: Mapping[str, Any], data: Any, precision: str, layer: str = "forward_features"
) -> str:
    """SHA-256 key of everything that changes the cached features (see the module docstring)."""
    selection = {k: v for k, v in sorted(data_cfg.items()) if k not in LOADER_ONLY_KEYS}
    parts = {
        "format": FORMAT,
        "backbone": str(getattr(backbone, "name", type(backbone).__name__)),
        "weights": state_digest(backbone.state_dict()),
        "data": selection,
        "data_module": type(data).__name__,
        "sizes": [len(getattr(data, f"{s}_set")) for s in SPLITS],
        # which samples, and for files their mtimes and sizes: an edited image under the same config is new data
        "samples": data.fingerprint() if hasattr(data, "fingerprint") else None,
        "preprocess": repr(getattr(backbone, "data_config", None)),
        "layer": layer,
        "precision": str(precision),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


@torch.no_grad()
def compute_features(
    backbone: nn.Module, data: Any, device: torch.device, precision: str, splits: tuple[str, ...] = SPLITS
) -> dict[str, torch.Tensor]:
    """Features of every split in ``splits`` (in data order, float32 on the CPU) and their labels."""
    was_training = backbone.training
    backbone.eval()
    original = next(backbone.parameters()).device
    backbone.to(device)
    out: dict[str, torch.Tensor] = {}
    statistics = normalization(backbone.data_config) if hasattr(backbone, "data_config") else None
    try:
        for split in splits:
            feats, labels = [], []
            for x, y in _ordered_batches(data, split, device):
                x = x.to(device, non_blocking=True)
                if x.dtype == torch.uint8:  # the decoded-image cache's batches: normalised on the device
                    x = normalize_images(x, *statistics)
                with _autocast(device, precision):
                    f = backbone.forward_features(x)
                feats.append(f.float().cpu())
                labels.append(y.cpu())
            out[f"{split}.features"] = torch.cat(feats).contiguous()
            out[f"{split}.labels"] = label_tensor(torch.cat(labels)).contiguous()
    finally:
        backbone.to(original)
        backbone.train(was_training)
    return out


def _ordered_batches(data: Any, split: str, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    o = data.options
    # Inference only: on a GPU bigger batches are faster. On a CPU they are slower — activations of 256 images
    # exceed glibc's mmap threshold and every batch page-faults fresh memory (benchmarks/feature_cache.py).
    batch_size = max(o.batch_size, 256) if device.type == "cuda" else o.batch_size
    loader = make_loader(
        getattr(data, f"{split}_set"),
        batch_size=batch_size,
        shuffle=False,
        seed=o.seed,
        num_workers=0 if getattr(data, "data_device", None) is not None else o.num_workers,  # GPU tensors: no workers
        collate_fn=type(data).collate_fn,
    )
    yield from loader


def _names(splits: tuple[str, ...]) -> set[str]:
    return {f"{s}.{part}" for s in splits for part in ("features", "labels")}


class FeatureCache:
    """In-memory and on-disk store of :class:`CachedFeatures` (one per key).

    Args:
        directory: Where ``<key>.safetensors`` files go; ``None`` keeps features in memory only.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[str, CachedFeatures] = {}

    def get(
        self,
        backbone: nn.Module,
        data: Any,
        data_cfg: Mapping[str, Any],
        device: torch.device,
        precision: str,
        write: bool = True,
        splits: tuple[str, ...] = SPLITS,
    ) -> CachedFeatures:
        """Features of ``splits`` for this backbone state and data: from memory, from disk, or computed.

        Splits are kept one by one under the same key: ``transferlab rank`` stores the training split only, and
        a later run with this key reads it and computes just the splits it lacks (``source`` then reads
        ``disk+computed``), writing the file back with all of them.

        Args:
            backbone: The frozen backbone.
            data: The set-up data module (``train_set``/``val_set``/``test_set``, ``options``).
            data_cfg: The plain ``data`` config (part of the key).
            device: Where to compute features.
            precision: The run's resolved precision (part of the key; sets autocast).
            write: Whether this process writes the disk file (rank 0 under DDP).
            splits: The splits needed.
        """
        start = time.perf_counter()
        key = cache_key(backbone, data_cfg, data, precision)
        stored = self._memory.get(key)
        have, origin = (dict(stored.tensors), "memory") if stored is not None else (self._read(key), "disk")
        missing = tuple(s for s in splits if f"{s}.features" not in have)
        if missing:
            origin = f"{origin}+computed" if have else "computed"
            have |= compute_features(backbone, data, device, precision, splits=missing)
            if write:
                self._write(key, have)
        cached = CachedFeatures(key, have, origin, time.perf_counter() - start)
        self._memory[key] = cached
        return cached

    def path(self, key: str) -> Path | None:
        """The disk file of ``key`` (``None`` for a memory-only cache)."""
        return None if self.directory is None else self.directory / f"{key}.safetensors"

    def _read(self, key: str) -> dict[str, torch.Tensor]:
        """The complete splits (features and labels) of the disk file; none for no file or an unreadable one."""
        path = self.path(key)
        if path is None or not path.is_file():
            return {}
        try:
            tensors = load_file(str(path))
        except Exception as err:  # a truncated or foreign file: recompute rather than fail the run
            log.warning("feature cache: %s is unreadable (%s); recomputing", path, err)
            return {}
        complete = [s for s in SPLITS if f"{s}.features" in tensors and f"{s}.labels" in tensors]
        return {name: tensors[name] for name in _names(tuple(complete))}

    def _write(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        path = self.path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # several sweep jobs may write at once
            save_file(tensors, str(tmp), metadata={"format": FORMAT, "key": key})
            os.replace(tmp, path)
        except OSError as err:  # a read-only or full disk costs speed, not the run
            log.warning("feature cache: could not write %s (%s); features stay in memory", path, err)


def cached_loaders(cached: CachedFeatures, data: Any, device: torch.device | None = None) -> dict[str, DataLoader]:
    """Loaders over cached features with the live loaders' batch size, shuffle seed and last-batch rule.

    On a GPU the features are held there when ``data.on_device`` allows (as for images): batches are cut on
    the device, with no host → device copy per step.
    """
    o = data.options
    device = device or torch.device("cpu")
    nbytes = sum(t.nbytes for t in cached.tensors.values())
    place = fits_on_device(getattr(o, "on_device", None), device, nbytes)
    datasets = {split: cached.dataset(split) for split in SPLITS}
    weights = data.sample_weights() if hasattr(data, "sample_weights") else None
    if place:
        for ds in datasets.values():
            ds.features, ds.labels = ds.features.to(device), ds.labels.to(device)
    return {
        split: make_loader(
            datasets[split],
            batch_size=o.batch_size,
            shuffle=split == "train",
            seed=o.seed,
            num_workers=0,  # an index_select per batch; worker processes would only add overhead
            collate_fn=pass_batch,
            train=split == "train",
            # the live loader's draws (data.sampler=balanced): cached features are in the train split's order
            sample_weights=weights if split == "train" else None,
        )
        for split in SPLITS
    }
