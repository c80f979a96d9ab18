"""Rank candidate backbones on the target data by transferability estimators, before any fine-tuning.

For each candidate the run's own assembly builds the pure pretrained backbone (no adapter, sharing or
re-initialisation) and the data with that backbone's preprocessing; the frozen features of the training split
come from the run's :class:`~transferlab.run.feature_cache.FeatureCache` — the same key and file a
feature-extraction or LP-FT run with these settings reads. The estimators score the training split (never
val or test), so only that split is computed and cached; a later run reads it and computes the rest.
Augmentation is switched off for ranking: estimators score clean features, and augmented batches could not
be cached.

A candidate whose backbone cannot be built or whose features cannot be computed becomes a row with its error;
the others are still ranked. Problems of the data itself (a single class, several tasks) stop the ranking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import lightning.pytorch as pl
import torch

from transferlab.config.readers import check_keys
from transferlab.data.multitask import MULTITASK
from transferlab.data.transforms import parse_augment
from transferlab.errors import ConfigError, DataError
from transferlab.ranking import ESTIMATORS, ScoreInputs, parse_estimators
from transferlab.ranking.labels import check_features
from transferlab.run.assembly import build_backbone, build_data_module
from transferlab.run.candidates import Candidate
from transferlab.run.feature_cache import FeatureCache
from transferlab.run.source_head import SourceHead, source_head
from transferlab.run.spec import RunConfig

WHERE = "ranking"
RANKING_KEYS = ("estimators", "gbc_dims", "gbc_gaussian", "runs", "out")


@dataclass(frozen=True)
class RankOptions:
    """The ``ranking`` group.

    Attributes:
        estimators: Estimator names, in table order (the first sorts the table).
        gbc_dims: GBC's PCA components (``None``: no reduction).
        gbc_gaussian: GBC's class covariance, ``spherical`` or ``diagonal``.
        runs: Where finished runs are looked up for their fine-tuned accuracy (``None``: nowhere).
        out: The output dir (``None``: ``<paths.output_root>/rank/<time>``).
    """

    estimators: tuple[str, ...]
    gbc_dims: int | None = 64
    gbc_gaussian: str = "spherical"
    runs: str | None = None
    out: str | None = None


def parse_ranking(raw: Any) -> RankOptions:
    """Check the ``ranking`` group.

    Raises:
        ConfigError: Naming ``ranking.<key>``, the bad value and the fix.
    """
    raw = dict(raw or {})
    check_keys(raw, RANKING_KEYS, where=WHERE)
    estimators = parse_estimators(raw.get("estimators", list(ESTIMATORS)[:5]), f"{WHERE}.estimators")
    dims = raw.get("gbc_dims", 64)
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise ConfigError(f"{WHERE}.gbc_dims={dims!r}: expected a positive integer or null. Fix: {WHERE}.gbc_dims=64.")
    gaussian = raw.get("gbc_gaussian", "spherical")
    if gaussian not in ("spherical", "diagonal"):
        raise ConfigError(
            f"{WHERE}.gbc_gaussian={gaussian!r}: expected spherical or diagonal. Fix: {WHERE}.gbc_gaussian=spherical."
        )
    for key in ("runs", "out"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{WHERE}.{key}={raw[key]!r}: expected a path or null.")
    return RankOptions(estimators, dims, gaussian, raw.get("runs"), raw.get("out"))


@dataclass
class RankRow:
    """One candidate's result.

    Attributes:
        candidate: The entry.
        architecture: The backbone's registry name (for a checkpoint, the one it records).
        width: Feature width.
        samples: Training images scored.
        scores: Estimator → score (``None``: skipped, see ``skipped``).
        skipped: Estimator → why it has no score for this candidate.
        source: Where the source classifier came from, or why there is none.
        cache: ``computed`` / ``disk`` / ``memory`` and the cache key.
        feature_seconds: Building the backbone and data, and the features (or reading them).
        score_seconds: Estimator → seconds.
        error: Why the candidate could not be scored (``None`` when it was).
    """

    candidate: Candidate
    architecture: str = ""
    width: int = 0
    samples: int = 0
    scores: dict[str, float | None] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    source: str = ""
    cache: str = ""
    feature_seconds: float = 0.0
    score_seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def seconds(self) -> float:
        """Everything this candidate cost."""
        return self.feature_seconds + sum(self.score_seconds.values())


def without_augmentation(config: RunConfig) -> tuple[RunConfig, bool]:
    """``config`` with every ``data.augment`` key off when any was on, and whether it changed.

    The off values are the conf files' own (``null`` crop, ``false`` flags, ``0`` strengths), so the cache key
    equals that of a run whose augment block is off.
    """
    augment = config.data.get("augment")
    if not parse_augment(augment).enabled:
        return config, False
    off = {k: None if k == "random_resized_crop" else False if isinstance(v, bool) else 0 for k, v in augment.items()}
    data = dict(config.data) | {"augment": off}
    return replace(config, data=data, resolved=dict(config.resolved) | {"data": data}), True


def check_data(config: RunConfig, data: Any) -> None:
    """Refuse data the estimators cannot score.

    Raises:
        ConfigError: For multi-task data.
        DataError: For fewer than 2 classes, in the config or in the training split.
    """
    name = config.data.get("name")
    if name == MULTITASK:
        raise ConfigError(
            f"data={name}: ranking scores one task at a time. Fix: rank each task's data on its own (e.g. data=digits)."
        )
    classes = list(data.class_names)
    present = len(torch.unique(torch.as_tensor(data.train_targets()), dim=0))
    if len(classes) < 2 or present < 2:
        shown = ", ".join(map(str, classes[:8])) or "none"
        raise DataError(
            f"data={name}: the training split holds {present} class(es) ({shown}); transferability compares how "
            "well features separate classes, which needs at least 2. Fix: choose data with 2 or more classes "
            "(e.g. data.classes=[…] or a folder with one subfolder per class)."
        )


def _score(row: RankRow, options: RankOptions, inputs: ScoreInputs, multi_label: bool) -> None:
    for name in options.estimators:
        estimator = ESTIMATORS[name]
        if estimator.needs_source and inputs.source_probabilities is None:
            row.scores[name], row.skipped[name] = None, f"no source classifier: {row.source}"
            continue
        if multi_label and not estimator.multi_label:
            row.scores[name], row.skipped[name] = None, "single-label estimator; the data is multi-label"
            continue
        start = time.perf_counter()
        row.scores[name] = estimator.score(inputs)
        row.score_seconds[name] = time.perf_counter() - start


def rank_candidate(
    config: RunConfig,
    candidate: Candidate,
    options: RankOptions,
    cache: FeatureCache,
    device: torch.device,
    data_modules: dict[str, Any] | None = None,
) -> RankRow:
    """Features and scores of one candidate (see the module docstring).

    ``data_modules`` keeps set-up data by preprocessing (``repr`` of the backbone's ``data_config``): candidates
    that preprocess alike (the EfficientNet-Lites at one image size) share one data module, as the splits and
    images are then the same.

    Raises:
        ConfigError, DataError: For data the estimators cannot score (:func:`check_data`).
    """
    row = RankRow(candidate)
    start = time.perf_counter()
    run_config = candidate.config(config)
    pl.seed_everything(config.options.seed, workers=True, verbose=False)  # a random init equals train's
    try:
        backbone, _ = build_backbone(run_config)
    except Exception as err:  # any failure here is this candidate's, not the ranking's
        row.error = f"the backbone could not be built: {_one_line(err)}"
        return row
    row.architecture, row.width = str(getattr(backbone, "name", candidate.backbone.name)), int(backbone.num_features)
    preprocessing = repr(backbone.data_config)  # type: ignore[attr-defined]
    data = (data_modules or {}).get(preprocessing)
    if data is None:
        data = build_data_module(run_config, backbone.data_config, "fit")  # type: ignore[attr-defined]
        if data_modules is not None:
            data_modules[preprocessing] = data
    check_data(run_config, data)
    precision = str(run_config.trainer.kwargs["precision"])
    try:
        cached = cache.get(backbone, data, run_config.data, device, precision, splits=("train",))
        features = check_features(cached.tensors["train.features"], cached.tensors["train.labels"], "features")
    except Exception as err:
        row.error = f"its features could not be computed: {_one_line(err)}"
        row.feature_seconds = time.perf_counter() - start
        return row
    labels = cached.tensors["train.labels"]
    row.samples, row.cache = len(labels), f"{cached.source} {cached.key[:12]}"
    head: SourceHead = source_head(candidate.backbone, row.width)
    row.source = head.origin
    row.feature_seconds = time.perf_counter() - start
    needs = any(ESTIMATORS[n].needs_source for n in options.estimators)
    probabilities = head.probabilities(features) if needs and head.available else None
    inputs = ScoreInputs(
        features, labels, probabilities, {"gbc_dims": options.gbc_dims, "gbc_gaussian": options.gbc_gaussian}
    )
    _score(row, options, inputs, multi_label=labels.ndim == 2)
    return row


def rank_candidates(
    config: RunConfig,
    candidates: list[Candidate],
    options: RankOptions,
    device: torch.device,
    progress: Callable[[str], None] = print,
) -> list[RankRow]:
    """Every candidate's row, in the given order (printing one progress line each)."""
    config, _ = without_augmentation(config)
    directory = config.options.feature_cache.dir if config.options.feature_cache.enabled else None
    cache = FeatureCache(directory)
    rows, data_modules = [], {}
    for i, candidate in enumerate(candidates, 1):
        row = rank_candidate(config, candidate, options, cache, device, data_modules)
        rows.append(row)
        if row.error:
            progress(f"rank: [{i}/{len(candidates)}] {candidate.label}: FAILED, {row.error}")
            continue
        shown = ", ".join(f"{n} {v:.4g}" for n, v in row.scores.items() if v is not None)
        progress(
            f"rank: [{i}/{len(candidates)}] {candidate.label}: {row.samples}×{row.width} features "
            f"({row.cache.split()[0]}) {row.seconds:.1f} s; {shown}"
        )
    return rows


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "no detail"
    return f"{type(err).__name__}: {text[:600]}"
