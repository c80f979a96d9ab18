"""Every file and folder name of a run dir and a sweep dir, defined once.

A run dir (``outputs/<task>/runs/<time>`` or a sweep job's ``<sweep dir>/<n>``) holds::

    .hydra/{config,hydra,overrides}.yaml   the composed config and the job's overrides (written once)
    .transferlab.lock                      held (flock) by the process that runs the job
    config.yaml                            the resolved config (at the end)
    metrics.json                           the results; its presence means "finished"
    split.json                             the sample ids of the train, val and test splits (what eval checks)
    failure.json                           error, message and traceback of a job that raised
    model.safetensors                      backbone + head, plain-data metadata
    model.onnx, model.pt (+ .json beside)  'transferlab export': preprocessing + network + softmax/sigmoid
    checkpoints/<step>/last.ckpt           what 'transferlab resume' continues from
    checkpoints/<step>/best-epochNN.ckpt   the step's best epoch by the monitored metric
    tensorboard/<run name>/                event files; the name says what the run varies (run/sweep.py)
    csv/metrics.csv, csv/hparams.yaml      logger.csv: every logged scalar, one row per step of the whole run
    mlflow.json                            logger.mlflow: the run's MLflow run id, experiment and tracking URI
    README.md                              the model card, where one is written (uploaded to MLflow with the run)
    train.log                              the job log (Hydra's, appended to)

A sweep dir holds ``multirun.yaml`` (Hydra's basic sweeper) or ``optimization_results.yaml`` (Optuna) and one
run dir per job. This module imports nothing, so every layer may use it (backbones read run dirs as weights).
"""

from __future__ import annotations

from pathlib import Path

METRICS_FILE = "metrics.json"
SPLIT_FILE = "split.json"
FAILURE_FILE = "failure.json"
MODEL_FILE = "model.safetensors"
#: What ``transferlab export`` writes by default (each with ``<name>.json`` beside it: the input/output spec).
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.pt"
CONFIG_FILE = "config.yaml"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT_PATTERN = "best-epoch{epoch:02d}"
TENSORBOARD_DIR = "tensorboard"
CSV_DIR = "csv"
CSV_METRICS_FILE = "metrics.csv"  # Lightning's CSVLogger's own name
MLFLOW_FILE = "mlflow.json"
MODEL_CARD_FILE = "README.md"
#: The model file and any exported siblings (model.onnx, model.pt and the JSON written beside them).
MODEL_FILES_GLOB = "model.*"
HYDRA_DIR = ".hydra"
HYDRA_CONFIG_FILE = "config.yaml"
HYDRA_RUNTIME_FILE = "hydra.yaml"
OVERRIDES_FILE = "overrides.yaml"
LOCK_FILE = ".transferlab.lock"
MULTIRUN_FILE = "multirun.yaml"
OPTUNA_FILE = "optimization_results.yaml"
EVAL_DIR = "eval"
#: The label of an evaluation of the run's own model on its own test split (``eval/test/``).
OWN_TEST_LABEL = "test"
INTERPRETATION_FILE = "interpretation.json"
PER_CLASS_FILE = "per_class.csv"
PREDICTIONS_FILE = "predictions.csv"
TOP_LOSSES_FILE = "top_losses.png"
#: The files of one evaluation (its TensorBoard event files ``events.out.tfevents.*`` sit beside them).
EVAL_FILES = (INTERPRETATION_FILE, PER_CLASS_FILE, PREDICTIONS_FILE, TOP_LOSSES_FILE)
EVENTS_PATTERN = "events.out.tfevents.*"
#: Sub-dirs of a run dir that never hold jobs (report's dir walk skips them).
NON_JOB_DIRS = frozenset({TENSORBOARD_DIR, CSV_DIR, CHECKPOINTS_DIR, "wandb", "lightning_logs", "__pycache__"})


def step_checkpoint_dir(run_dir: Path, step_label: str) -> Path:
    """``<run dir>/checkpoints/<step>``: where a plan step's checkpoints go."""
    return Path(run_dir) / CHECKPOINTS_DIR / step_label


def last_checkpoint(run_dir: Path, step_label: str) -> Path:
    """``<run dir>/checkpoints/<step>/last.ckpt``."""
    return step_checkpoint_dir(run_dir, step_label) / LAST_CHECKPOINT


def eval_dir(run_dir: Path, label: str) -> Path:
    """``<run dir>/eval/<label>``: where one ``transferlab eval`` of the run writes."""
    return Path(run_dir) / EVAL_DIR / label


def eval_dirs(run_dir: Path) -> list[Path]:
    """The run's evaluation folders that hold an ``interpretation.json``, sorted by label."""
    return sorted(p.parent for p in (Path(run_dir) / EVAL_DIR).glob(f"*/{INTERPRETATION_FILE}"))


def eval_outputs(folder: Path) -> list[Path]:
    """The files an earlier evaluation left in ``folder``: its four files, then its TensorBoard event files."""
    folder = Path(folder)
    found = [folder / name for name in EVAL_FILES if (folder / name).exists()]
    return found + sorted(folder.glob(EVENTS_PATTERN))


def overrides_file(run_dir: Path) -> Path:
    """``<run dir>/.hydra/overrides.yaml``: the job's command-line overrides (what ``report`` groups by)."""
    return Path(run_dir) / HYDRA_DIR / OVERRIDES_FILE


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run (its ``metrics.json``)."""
    return (Path(run_dir) / METRICS_FILE).is_file()
