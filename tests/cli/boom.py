"""A test-only Lightning callback that fails when training starts: an unexpected (non-user) error."""

from __future__ import annotations

import lightning.pytorch as pl


class Boom(pl.Callback):
    """Raise ``RuntimeError('boom')`` in ``on_train_start``."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise RuntimeError("boom: a bug in a callback")
