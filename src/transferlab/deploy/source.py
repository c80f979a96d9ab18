"""Which file of a run ``predict`` and ``export`` use, and the clear refusals when there is none.

A finished run dir gives its ``model.safetensors``. An unfinished one (killed, or still running: no
``metrics.json``) is refused even when it has checkpoints, because its last checkpoint is not the model the
run would have chosen; the message names the checkpoint, which may be passed explicitly. A finished run
trained with ``export=false`` has no model file: its best checkpoint is named instead.
"""

from __future__ import annotations

from pathlib import Path

from transferlab.errors import WeightsError
from transferlab.rundir.layout import CHECKPOINTS_DIR, LAST_CHECKPOINT, METRICS_FILE, MODEL_FILE


def _newest(run_dir: Path, pattern: str) -> Path | None:
    found = sorted(run_dir.glob(f"{CHECKPOINTS_DIR}/**/{pattern}"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def model_source(path: str | Path) -> Path:
    """The model file behind ``path`` (a run dir or a model file).

    Raises:
        WeightsError: For a path that does not exist, a run that did not finish, or a run dir without a model.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if not path.exists():
        raise WeightsError(
            f"{path}: no such file or directory. Fix: pass a finished run's directory, its {MODEL_FILE} or a .ckpt."
        )
    if (path / MODEL_FILE).is_file() and (path / METRICS_FILE).is_file():
        return path / MODEL_FILE
    last = _newest(path, LAST_CHECKPOINT)
    if not (path / METRICS_FILE).is_file():
        if last is None and not (path / MODEL_FILE).is_file():
            raise WeightsError(
                f"{path}: not a run directory (no {METRICS_FILE}, no {MODEL_FILE}, no checkpoints). Fix: pass a "
                "finished run's directory (outputs/<task>/runs/<time>) or a model file."
            )
        hint = f" Its newest checkpoint is {last}: pass that file to use it as it is." if last else ""
        raise WeightsError(
            f"{path}: the run did not finish (no {METRICS_FILE}: it was stopped, crashed or is still running), so "
            f"it has no final model. Fix: finish it with 'transferlab resume {path}'.{hint}"
        )
    best = _newest(path, "best-*.ckpt") or last
    hint = f" pass its checkpoint {best}," if best else ""
    raise WeightsError(
        f"{path}: the run finished without a {MODEL_FILE} (it was trained with export=false). Fix:{hint} or "
        "train again with export=true."
    )
