"""Training losses of the task heads: weighted / smoothed / focal cross-entropy and BCE, and ``auto`` weights.

Every formula here is the one the docs state and the tests check:

* single-label, per sample ``i`` with target class ``y``: ``ℓ_i = −(1−ε)·w_y log p_y − (ε/C)·Σ_c w_c log p_c``
  (class weights ``w``, all ones when not set; label smoothing ε), focal multiplies it by ``(1 − p_y)^γ``, and
  the batch loss is ``Σ_i ℓ_i / Σ_i w_{y_i}``. That is PyTorch's weighted, smoothed cross-entropy: without
  focusing it equals ``F.cross_entropy(logits, y, weight=w, label_smoothing=ε)`` (the function used then).
  Mixed batches (mixup/CutMix) carry class probabilities ``t_i``: ``F.cross_entropy`` with probability targets,
  ``ℓ_i = −Σ_c w_c t'_ic log p_ic`` with ``t' = (1−ε)·t + ε/C``, averaged over the batch (focal loss takes
  class indices only; the assembly refuses it with mixing).
* multi-label, per sample ``i`` and label ``l`` with target ``t = y·(1−ε) + ε/2``:
  ``ℓ_il = −[pw_l · t log σ(z) + (1−t) log(1−σ(z))]``; focal multiplies the positive term by ``(1−σ(z))^γ``
  and the negative one by ``σ(z)^γ``. The batch loss is ``Σ_il w_l ℓ_il / (B · Σ_l w_l / L)``: the mean over
  elements when ``w`` is all ones. Without focusing this is ``F.binary_cross_entropy_with_logits(z, t,
  weight=w, pos_weight=pw)`` up to that normalisation of ``w``.

Validation and test losses are always the plain, unweighted ones, so that ``val/loss`` compares across
loss settings in a study.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.errors import ConfigError
from transferlab.model.tasks.options import Weights


def balanced_weights(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    """Normalised inverse frequency: ``w_c = N / (C · n_c)`` (scikit-learn's ``class_weight="balanced"``).

    The mean weight per training sample is then 1 (``Σ_c n_c w_c = N``), so the loss keeps its scale and the
    learning rates stay comparable. A class absent from the counts gets weight 0 (no sample has it).

    Args:
        counts: Samples (or positive samples, for multi-label) per class in the training split.
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    total, classes = counts.sum(), int(present.sum())
    out = np.zeros_like(counts)
    if classes:
        out[present] = total / (classes * counts[present])
    return out


def positive_weights(positives: np.ndarray, samples: int) -> np.ndarray:
    """``pos_weight=auto`` of multi-label BCE: negatives ÷ positives per label (1 for a label never positive)."""
    positives = np.asarray(positives, dtype=np.float64)
    out = np.ones_like(positives)
    seen = positives > 0
    out[seen] = (samples - positives[seen]) / positives[seen]
    return out


def label_counts(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class counts of a training split's targets: ``(N,)`` class indices or ``(N, C)`` 0/1 rows."""
    targets = np.asarray(targets)
    if targets.ndim == 2:
        return (targets > 0.5).sum(axis=0).astype(np.float64)
    return np.bincount(targets.astype(np.int64), minlength=num_classes).astype(np.float64)


def resolve_weights(
    spec: Weights, key: str, num_classes: int, names: Sequence[str], auto_values: np.ndarray | None
) -> torch.Tensor | None:
    """The weight tensor of ``task.<key>``: ``None``, counted (``auto``) or the given list, checked.

    Args:
        spec: The parsed option.
        key: ``class_weights`` or ``pos_weight`` (for messages).
        num_classes: Classes (labels) of the head.
        names: Their names (for messages).
        auto_values: What ``auto`` means for this run, counted on its training split (:func:`balanced_weights`,
            :func:`positive_weights`); ``None`` before the data is set up: ``auto`` gives ones then
            (``transferlab validate`` reads no data).

    Raises:
        ConfigError: For a list whose length is not the number of classes.
    """
    if spec is None:
        return None
    if spec == "auto":
        values = np.ones(num_classes) if auto_values is None else auto_values
        return torch.tensor(values, dtype=torch.float32)
    if len(spec) != num_classes:
        shown = ", ".join(map(str, list(names)[:8])) + (", …" if num_classes > 8 else "")
        raise ConfigError(
            f"task.{key}={list(spec)!r}: {len(spec)} weights for {num_classes} classes ({shown}). "
            f"Fix: give one weight per class in this order, or task.{key}=auto."
        )
    return torch.tensor(spec, dtype=torch.float32)


def single_label_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    smoothing: float = 0.0,
    gamma: float | None = None,
) -> torch.Tensor:
    """Weighted, smoothed, optionally focal cross-entropy of a batch (see the module docstring).

    Args:
        logits: ``(B, C)``.
        target: ``(B,)`` class indices, or ``(B, C)`` class probabilities (a mixed batch).
        weight: ``(C,)`` class weights, or ``None``.
        smoothing: Label smoothing ε.
        gamma: Focal exponent γ; ``None`` for plain cross-entropy.

    Raises:
        ValueError: For probability targets with focusing.
    """
    if target.ndim == 2:
        if gamma is not None:
            raise ValueError("focal loss takes class indices; mixed (mixup/CutMix) batches need cross_entropy")
        return F.cross_entropy(logits, target.to(logits.dtype), weight=weight, label_smoothing=smoothing)
    if gamma is None:
        return F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing)
    logp = F.log_softmax(logits.float(), dim=1)
    nll = -logp.gather(1, target[:, None]).squeeze(1)
    focus = (1.0 - torch.exp(-nll)).pow(gamma)  # (1 − p_y)^γ
    w = torch.ones(logits.shape[1], device=logp.device) if weight is None else weight.to(logp)
    w_y = w[target]
    per_sample = (1.0 - smoothing) * w_y * nll
    if smoothing:
        per_sample = per_sample - smoothing * (logp * w).mean(dim=1)
    return (focus * per_sample).sum() / w_y.sum()


def multi_label_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
    smoothing: float = 0.0,
    gamma: float | None = None,
) -> torch.Tensor:
    """Weighted, smoothed, optionally focal BCE of a multi-label batch (see the module docstring).

    Args:
        logits: ``(B, L)``.
        target: ``(B, L)`` 0/1 floats.
        weight: ``(L,)`` per-label weights, or ``None``.
        pos_weight: ``(L,)`` weights of the positive terms, or ``None``.
        smoothing: Label smoothing ε (targets ``y·(1−ε) + ε/2``).
        gamma: Focal exponent γ; ``None`` for plain BCE.
    """
    z = logits.float()
    t = target.to(z)
    if smoothing:
        t = t * (1.0 - smoothing) + smoothing / 2
    log_p, log_not_p = F.logsigmoid(z), F.logsigmoid(-z)
    pos, neg = t * log_p, (1.0 - t) * log_not_p
    if gamma is not None:
        pos = pos * (1.0 - torch.exp(log_p)).pow(gamma)
        neg = neg * torch.exp(log_p).pow(gamma)
    if pos_weight is not None:
        pos = pos * pos_weight.to(z)
    elements = -(pos + neg)
    if weight is None:
        return elements.mean()
    w = weight.to(z)
    return (elements * w).sum() / (elements.shape[0] * w.mean() * elements.shape[1])
