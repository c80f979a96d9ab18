"""Several data sets served together for multi-task hard sharing (``data=multitask_digits``).

Each task is a full ``data`` config built by the ordinary :func:`~transferlab.data.factory.build_data`, so
every data set, option and check of the package works per task. Training batches come from Lightning's
``CombinedLoader`` in ``max_size_cycle`` mode (``{task: (x, y)}``; shorter tasks cycle, so an epoch is the
longest task's epoch); validation and test are one loader per task, in task order, so Lightning's
``dataloader_idx`` names the task.

Example:
    >>> dm = MultiTaskDataModule.from_config(
    ...     {"name": "multitask", "tasks": {"low": {"name": "digits", "classes": [0, 1]},
    ...                                     "high": {"name": "digits", "classes": [8, 9]}}},
    ...     backbone.data_config)  # doctest: +SKIP
    >>> dm.setup("fit"); dm.num_classes_per_task  # doctest: +SKIP
    {'low': 2, 'high': 2}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, cast, get_args

import lightning.pytorch as pl
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader

from transferlab.backbones.base import DataConfig
from transferlab.data.base import TransferDataModule
from transferlab.data.factory import build_data
from transferlab.data.options import check_keys
from transferlab.data.registry import register_data
from transferlab.errors import ConfigError, DataError

Weighting = Literal["equal", "uncertainty"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
"""Valid values of ``data.loss_weighting`` (the loss-weighting modules are the model's)."""

MULTITASK = "multitask"
"""The ``data.name`` that selects multi-task hard sharing."""

KEYS: tuple[str, ...] = ("name", "tasks", "loss_weighting", "loss_weights", "image_size")
"""Keys of the multi-task ``data`` group (each task has its own full data config)."""

_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _task_error(task: str, err: ConfigError) -> ConfigError:
    # build_data names keys 'data.<key>'; inside a task the user must look under 'data.tasks.<task>.<key>'.
    return ConfigError(re.sub(r"\bdata\.", f"data.tasks.{task}.", str(err)))


def _read_weights(cfg: Mapping[str, Any], tasks: list[str]) -> dict[str, float]:
    raw = cfg.get("loss_weights")
    if raw is None:
        return dict.fromkeys(tasks, 1.0)
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"data.loss_weights={raw!r}: expected a mapping task → weight, or null (1 each). "
            f"Fix: data.loss_weights.{tasks[0]}=1.0."
        )
    weights = dict.fromkeys(tasks, 1.0)
    for task, value in raw.items():
        if task not in weights:
            raise ConfigError(
                f"data.loss_weights.{task}: no such task; the tasks are {', '.join(tasks)}. "
                f"Fix: name one of them or add data.tasks.{task}."
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(
                f"data.loss_weights.{task}={value!r}: expected a number ≥ 0 (0 drops the task). "
                f"Fix: data.loss_weights.{task}=1.0."
            )
        weights[task] = float(value)
    if not any(weights.values()):
        raise ConfigError(f"data.loss_weights={weights}: every weight is 0, nothing would train.")
    return weights


@register_data
class MultiTaskDataModule(pl.LightningDataModule):
    """One data module per task, served together.

    Args:
        tasks: Task name → its data module (built by ``build_data``).
        loss_weighting: How the module combines task losses (``equal`` or ``uncertainty``).
        loss_weights: Task name → fixed loss weight, one per task.
    """

    name = MULTITASK
    KEYS = KEYS

    def __init__(
        self, tasks: Mapping[str, TransferDataModule], loss_weighting: Weighting, loss_weights: Mapping[str, float]
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("MultiTaskDataModule needs at least one task")
        self.tasks = dict(tasks)
        self.loss_weighting = loss_weighting
        self.loss_weights = dict(loss_weights)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], data_config: DataConfig) -> MultiTaskDataModule:
        """Build every task's data module from the plain multi-task ``data`` config.

        Raises:
            ConfigError: naming ``data.<key>`` or ``data.tasks.<task>.<key>`` on any bad key or value.
            DataError: when a task's data cannot be found.
        """
        check_keys(cfg, KEYS)
        raw_tasks = cfg.get("tasks")
        if not isinstance(raw_tasks, Mapping) or not raw_tasks:
            raise ConfigError(
                f"data.tasks={raw_tasks!r}: expected a mapping task name → data config with at least one task. "
                "Fix: data=multitask_digits, or data.tasks.<task>.name=digits."
            )
        tasks: dict[str, TransferDataModule] = {}
        for task, task_cfg in raw_tasks.items():
            if not isinstance(task, str) or not _TASK_NAME.match(task):
                raise ConfigError(
                    f"data.tasks.{task}: a task name must be an identifier (letters, digits, '_'); it names a head "
                    "and a TensorBoard tag."
                )
            if not isinstance(task_cfg, Mapping):
                raise ConfigError(
                    f"data.tasks.{task}={task_cfg!r}: expected a data config with at least 'name'. "
                    f"Fix: data.tasks.{task}.name=digits (any data set; see conf/data/*.yaml for its keys)."
                )
            if task_cfg.get("name") == MULTITASK:
                raise ConfigError(f"data.tasks.{task}.name=multitask: tasks cannot nest. Fix: name a data set.")
            if cfg.get("image_size") is not None:  # one size for every task (what debug=fast sets)
                task_cfg = {**task_cfg, "image_size": cfg["image_size"]}
            try:
                tasks[task] = build_data(task_cfg, data_config)
            except ConfigError as err:
                raise _task_error(task, err) from err
        kind = cfg.get("loss_weighting", "equal")
        if kind not in WEIGHTINGS:
            raise ConfigError(
                f"data.loss_weighting={kind!r}: unknown loss weighting; valid: {', '.join(WEIGHTINGS)}. "
                "Fix: data.loss_weighting=equal."
            )
        return cls(tasks, cast(Weighting, kind), _read_weights(cfg, list(tasks)))

    # ---- what the engine reads --------------------------------------------------------------------
    @property
    def task_names(self) -> list[str]:
        """Task names, in config order (also the order of the val/test loaders)."""
        return list(self.tasks)

    @property
    def num_classes_per_task(self) -> dict[str, int]:
        """Task → number of classes of its head."""
        return {t: dm.num_classes for t, dm in self.tasks.items()}

    @property
    def class_names_per_task(self) -> dict[str, list[str]]:
        """Task → its class names."""
        return {t: list(dm.class_names) for t, dm in self.tasks.items()}

    @property
    def class_names(self) -> list[str]:
        """All classes as ``<task>/<class>`` (the flat view single-task code expects)."""
        return [f"{t}/{c}" for t, names in self.class_names_per_task.items() for c in names]

    @property
    def num_classes(self) -> int:
        """Outputs over all heads."""
        return len(self.class_names)

    @property
    def augment_enabled(self) -> bool:
        """Whether any task augments its training batches."""
        return any(dm.augment_enabled for dm in self.tasks.values())

    def check_sources(self) -> None:
        """Check that every task's data can be found, without reading it.

        Raises:
            DataError: naming ``data.tasks.<task>.<key>``.
        """
        for task, dm in self.tasks.items():
            try:
                dm.check_sources()
            except DataError as err:
                raise DataError(re.sub(r"\bdata\.", f"data.tasks.{task}.", str(err))) from err

    # ---- Lightning ----------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Set up every task (each task's setup is idempotent)."""
        for dm in self.tasks.values():
            dm.setup(stage)

    def train_dataloader(self) -> CombinedLoader:
        """``{task: (x, y)}`` batches; shorter tasks cycle until the longest finishes its epoch."""
        return CombinedLoader({t: dm.train_dataloader() for t, dm in self.tasks.items()}, mode="max_size_cycle")

    def val_dataloader(self) -> list[DataLoader]:
        """One loader per task, in :attr:`task_names` order (``dataloader_idx`` → task)."""
        return [dm.val_dataloader() for dm in self.tasks.values()]

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per task, in :attr:`task_names` order (``dataloader_idx`` → task)."""
        return [dm.test_dataloader() for dm in self.tasks.values()]

    def describe(self) -> str:
        """One line per task, plus the loss weighting."""
        weights = ", ".join(f"{t}={w:g}" for t, w in self.loss_weights.items())
        lines = [f"multitask: {len(self.tasks)} tasks, loss_weighting={self.loss_weighting} ({weights})"]
        lines += [f"  {t}: {dm.describe()}" for t, dm in self.tasks.items()]
        return "\n".join(lines)
