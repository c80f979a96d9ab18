"""Mixup and CutMix of training batches, with timm's ``Mixup`` mixing the images.

timm's ``Mixup`` (mode ``batch``) draws one λ per batch, pairs sample ``i`` with sample ``B−1−i`` (the batch
flipped), mixes the images in place (mixup: a blend; CutMix: a box of the partner pasted in, λ corrected to the
box's area) and mixes one-hot labels the same way. Its label mixing takes class indices only; here the labels
are mixed by asking timm to mix the *identity*: the targets ``arange(B)`` over ``B`` "classes" come back as the
``B × B`` mixing matrix ``M`` (``M[i, i] = λ``, ``M[i, B−1−i] = 1 − λ``), and any targets ``Y`` — one-hot
classes or multi-hot labels — mix as ``M @ Y``. So single- and multi-label tasks share one exact rule.

timm needs an even batch: an odd one mixes its first ``B − 1`` samples and leaves the last as it is.
Random draws come from numpy's global generator (seeded by the run, saved with every checkpoint).
"""

from __future__ import annotations

import torch
from timm.data import Mixup

from transferlab.strategies.spec import StageSpec


class BatchMixer:
    """Mix a batch's images and soft targets as the stage's ``mixup``/``cutmix`` keys say.

    Args:
        stage: The stage (``mixup``, ``cutmix``, ``mix_prob``, ``mix_switch_prob``).

    Example:
        >>> mixer = BatchMixer(StageSpec("s", mixup=0.2))
        >>> x, t = mixer(torch.rand(4, 3, 8, 8), torch.eye(3)[[0, 1, 2, 0]])
        >>> t.sum(1)
        tensor([1., 1., 1., 1.])
    """

    def __init__(self, stage: StageSpec) -> None:
        self.mixup = Mixup(
            mixup_alpha=stage.mixup,
            cutmix_alpha=stage.cutmix,
            prob=stage.mix_prob,
            switch_prob=stage.mix_switch_prob,
            mode="batch",
            label_smoothing=0.0,  # smoothing is the loss's (F.cross_entropy(label_smoothing=…), smoothed BCE)
            num_classes=2,
        )

    def __call__(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed copies of ``x`` ``(B, C, H, W)`` and ``targets`` ``(B, K)`` (rows of probabilities or 0/1 labels).

        Returns:
            ``(images, targets)``: the images mixed (a new tensor; ``x`` is left as it is) and the targets as
            float ``(B, K)``, each row the same mixture of the paired rows.
        """
        n = int(x.shape[0]) - int(x.shape[0]) % 2
        x = x.clone()
        targets = targets.float()
        if n < 2:
            return x, targets
        self.mixup.num_classes = n
        _, mix = self.mixup(x[:n], torch.arange(n, device=x.device))  # mixes x[:n] in place (a view of the clone)
        mixed = targets.clone()
        mixed[:n] = mix.to(targets) @ targets[:n]
        return x, mixed
