"""A TensorBoard logger whose x-axis runs on across the run's many ``Trainer.fit`` calls.

Each plan step is its own ``Trainer`` whose global step restarts at 0; the engine sets ``step_offset`` so all
steps of all stages draw one continuous curve per scalar in one TensorBoard run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from typing_extensions import override

from transferlab.run.sweep import run_label
from transferlab.rundir.layout import TENSORBOARD_DIR


class RunTensorBoardLogger(TensorBoardLogger):
    """``TensorBoardLogger`` with a step offset and one event stream for the whole run.

    Args:
        save_dir: The run directory; events go to ``<save_dir>/tensorboard/<label>``, where the label names what
            the job varies (``strategy=finetune,seed=1``; see :func:`~transferlab.run.sweep.run_label`).
        **kwargs: Passed to ``TensorBoardLogger`` (``default_hp_metric`` is forced off: the run logs its real
            final metrics to the HParams dashboard instead of the ``-1`` placeholder).
    """

    def __init__(self, save_dir: str, **kwargs: Any) -> None:
        kwargs.setdefault("name", TENSORBOARD_DIR)
        kwargs.setdefault("version", run_label())  # the TensorBoard run name says what this job varies
        kwargs["default_hp_metric"] = False
        super().__init__(save_dir=save_dir, **kwargs)
        self.step_offset = 0

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log scalars at ``step + step_offset``."""
        super().log_metrics(metrics, None if step is None else step + self.step_offset)

    @override
    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Flush only: the next step's Trainer keeps writing to the same event file."""
        if self._experiment is not None:
            self.experiment.flush()

    @rank_zero_only
    def log_hparams_session(
        self, values: Mapping[str, Any], swept: Sequence[str], metrics: Mapping[str, float]
    ) -> None:
        """Write the run's HParams session: its columns (swept ones first, flagged as differing) and metrics.

        TensorBoard sorts the columns of its HParams table by whether they differ, then by name, and shows the
        first few: flagging exactly the swept keys puts what the sweep varies in front (see ``run/hparams.py``).
        """
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
        from torch.utils.tensorboard.summary import hparams

        self.log_metrics(dict(metrics), 0)
        exp, ssi, sei = hparams(dict(values), dict(metrics))
        content = exp.value[0].metadata.plugin_data
        data = HParamsPluginData.FromString(content.content)
        infos = sorted(data.experiment.hparam_infos, key=lambda info: (info.name not in swept, info.name))
        for info in infos:
            info.differs = info.name in swept
        del data.experiment.hparam_infos[:]
        data.experiment.hparam_infos.extend(infos)
        content.content = data.SerializeToString()
        writer = self.experiment._get_file_writer()
        for summary in (exp, ssi, sei):
            writer.add_summary(summary, 0)

    @rank_zero_only
    def close(self) -> None:
        """Flush and close the event file at the end of the run."""
        if self._experiment is not None:
            self.experiment.flush()
            self.experiment.close()
