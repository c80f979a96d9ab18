"""Loading tensors into a backbone: find the key prefix, check shapes, load, report what matched.

Sources: local files and run directories (read by :mod:`.weight_files`) and the packaged weights. Keys are
matched by trying every dotted prefix of the file keys (``backbone.``, ``module.``, ``_orig_mod.backbone.``, …)
and keeping the one that matches the most backbone keys; classifier heads are ignored, not reported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from transferlab.backbones.weight_files import read_weights_file
from transferlab.errors import WeightsError

log = logging.getLogger(__name__)

#: Top-level module names of classifier heads: their tensors are ignored, not reported as unexpected.
HEAD_NAMES = frozenset({"head", "heads", "fc", "classifier", "last_linear", "_fc", "head_dist", "aux_logits"})
#: How deep a key prefix to strip may be (``_orig_mod.model.backbone.`` is three levels).
MAX_PREFIX_DEPTH = 4


@dataclass(frozen=True)
class LoadReport:
    """What loading a weights file into a backbone did.

    Attributes:
        source: The file the tensors came from.
        loaded: Backbone keys that received a tensor.
        missing: Backbone keys the file has no tensor for (they keep their current values).
        unexpected: File keys (under the chosen prefix) that match nothing in the backbone.
        ignored: File keys outside the backbone: other prefixes (``head.*`` of an export) or classifier heads.
        prefix: Prefix stripped from file keys (``backbone.``, ``module.``, …).
    """

    source: str
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    ignored: tuple[str, ...]
    prefix: str = ""

    def summary(self) -> str:
        """One line: counts, the prefix and the first few problem keys."""
        total = len(self.loaded) + len(self.missing)
        text = f"loaded {len(self.loaded)}/{total} backbone tensors from {self.source}"
        if self.prefix:
            text += f" (stripped prefix {self.prefix!r})"
        if self.ignored:
            text += f"; ignored {len(self.ignored)} non-backbone tensors ({_few(self.ignored)})"
        if self.missing:
            text += f"; MISSING {len(self.missing)} ({_few(self.missing)}) keep their initial values"
        if self.unexpected:
            text += f"; UNEXPECTED {len(self.unexpected)} ({_few(self.unexpected)})"
        return text


def _few(keys: tuple[str, ...] | list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", …" if len(keys) > n else "")


def _key_prefixes(key: str) -> list[str]:
    parts = key.split(".")
    return [""] + [".".join(parts[: i + 1]) + "." for i in range(min(MAX_PREFIX_DEPTH, len(parts) - 1))]


def _common_prefix(keys: list[str]) -> str:
    """The first dotted component shared by every key (``model.`` for a ModelBackbone), else ``""``."""
    roots = {k.split(".", 1)[0] for k in keys}
    return f"{roots.pop()}." if len(roots) == 1 and all("." in k for k in keys) else ""


def _choose_prefixes(file_keys: list[str], target: set[str], target_prefix: str) -> tuple[str, str]:
    """Pick (strip from file keys, add to file keys) that makes the most file keys hit backbone keys.

    Candidates are data-driven: every dotted prefix up to :data:`MAX_PREFIX_DEPTH` levels, so the usual
    wrappers (``backbone.``, ``model.backbone.``, ``module.``, ``_orig_mod.``, ``encoder.``) and their
    combinations all work; a plain torchvision/timm file gets the backbone's own ``model.`` prefix added.
    Ties go to the shortest prefix.
    """
    adds = [""] + ([target_prefix] if target_prefix else [])
    hits: dict[tuple[str, str], int] = {}
    for key in file_keys:
        for strip in _key_prefixes(key):
            rest = key[len(strip) :]
            for add in adds:
                if add + rest in target:
                    hits[(strip, add)] = hits.get((strip, add), 0) + 1
    if not hits:
        return "", ""
    return max(hits, key=lambda sa: (hits[sa], -len(sa[0]), -len(sa[1])))


def _is_head(name: str, target_prefix: str) -> bool:
    rest = name[len(target_prefix) :] if target_prefix and name.startswith(target_prefix) else name
    return rest.split(".", 1)[0] in HEAD_NAMES


def load_state_dict_into(
    backbone: nn.Module, tensors: Mapping[str, torch.Tensor], source: str, strict: bool = False
) -> LoadReport:
    """Load tensors into a backbone after finding the key prefix; report what matched.

    Args:
        backbone: The target module.
        tensors: File tensors by key.
        source: Where the tensors came from (for messages).
        strict: Also fail on missing or unexpected keys (shape mismatches and zero matches always fail).

    Returns:
        The report (also logged as one line).

    Raises:
        WeightsError: On shape mismatches, when no key matches, or (``strict``) on missing/unexpected keys.
    """
    own = backbone.state_dict()
    target_prefix = _common_prefix(list(own))
    strip, add = _choose_prefixes(list(tensors), set(own), target_prefix)
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    ignored: list[str] = []
    for key, tensor in tensors.items():
        if not key.startswith(strip):
            ignored.append(key)  # outside the backbone, e.g. head.* next to backbone.* in an export
            continue
        name = add + key[len(strip) :]
        if name in own:
            mapped[name] = tensor
        elif _is_head(key[len(strip) :], target_prefix):
            ignored.append(key)
        else:
            unexpected.append(key)
    arch = getattr(backbone, "name", type(backbone).__name__)
    if not mapped:
        wanted = [k for k in own if not k.endswith("num_batches_tracked")]
        foreign = unexpected or [k for k in tensors if k not in ignored] or list(tensors)
        raise WeightsError(
            f"{source}: no tensor matches backbone {arch}: MISSING {len(wanted)} backbone tensors "
            f"({_few(wanted)}); UNEXPECTED {len(foreign)} file tensors ({_few(foreign)}). The file holds "
            f"another architecture or naming. Fix: pass the backbone the file was "
            f"saved from (backbone=<arch> backbone.weights=<file>, or backbone=checkpoint for transferlab exports)."
        )
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs backbone {tuple(own[k].shape)}"
        for k, v in mapped.items()
        if v.shape != own[k].shape
    ]
    if mismatched:
        raise WeightsError(
            f"{source}: {len(mismatched)} of {len(mapped)} matching tensors do not fit backbone {arch} "
            f"({'; '.join(mismatched[:3])}{'; …' if len(mismatched) > 3 else ''}). "
            f"The file holds another architecture. Fix: pass the architecture it was saved from "
            f"(backbone=<arch> backbone.weights=<file>, or backbone=checkpoint for transferlab exports)."
        )
    # num_batches_tracked is a BatchNorm step counter, absent from many published files: not worth a warning.
    missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")]
    report = LoadReport(source, tuple(mapped), tuple(missing), tuple(unexpected), tuple(ignored), strip)
    if strict and (missing or unexpected):
        raise WeightsError(f"{report.summary()}. Fix: pass weights saved from backbone {arch}.")
    backbone.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        log.warning("%s. HINT: check that the file was saved from backbone %s.", report.summary(), arch)
    else:
        log.info(report.summary())
    return report


def load_weights_file(backbone: nn.Module, path: str | os.PathLike[str], strict: bool = False) -> LoadReport:
    """Load a local weights file or run directory into ``backbone``.

    Args:
        backbone: The target module (its keys decide the prefix to strip).
        path: ``.safetensors``, ``.pt``/``.pth``/``.bin``, Lightning ``.ckpt`` or a run directory.
        strict: Also fail on missing or unexpected keys.

    Returns:
        What was loaded, missing, unexpected and ignored.

    Raises:
        WeightsError: Unreadable or unsafe file, wrong architecture, or (``strict``) incomplete match.

    Example:
        >>> backbone = create_backbone("tv:resnet18")  # doctest: +SKIP
        >>> load_weights_file(backbone, "outputs/train/2024-01-01_12-00-00").missing  # doctest: +SKIP
        ()
    """
    file = read_weights_file(path)
    return load_state_dict_into(backbone, file.tensors, str(file.path), strict=strict)
