"""Where ``transferlab eval`` writes its interpretation, decided (and refused) before anything is computed.

Only paths are read here (no torch import), so a refusal costs a fraction of a second:

- ``--output-dir DIR``: the files go straight into ``DIR``;
- else a finished run (its dir, ``model.safetensors`` or a checkpoint inside it): ``<run>/eval/<label>/``, where
  the label is ``test`` for the run's own model with no data overrides, the overrides otherwise
  (``data=image_folder,data.root=~_photos``), with ``@<checkpoint>`` for a model other than ``model.safetensors``;
- else (a model file outside any run dir, or a run that has not finished) nothing is written: the tables are
  printed only.

Files of an earlier evaluation in the folder are never overwritten without ``--force``.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transferlab.cli.common import fail
from transferlab.rundir.layout import CHECKPOINTS_DIR, MODEL_FILE, OWN_TEST_LABEL, eval_dir, eval_outputs, is_finished
from transferlab.rundir.split import find_run_dir

MAX_LABEL = 100  # characters of a folder name (file systems allow 255; a shell prompt less)


@dataclass(frozen=True)
class EvalTarget:
    """Where one evaluation writes.

    Attributes:
        folder: The folder of its files, or ``None`` when it only prints.
        label: The evaluation's name (its folder's under ``<run>/eval/``).
        note: Why nothing is written (``folder`` is ``None``), for the terminal.
    """

    folder: Path | None
    label: str
    note: str = ""


def _safe(text: str) -> str:
    """``text`` as one folder name: no separators, spaces or quotes, not hidden, at most :data:`MAX_LABEL` long."""
    safe = "".join("_" if c in "/\\\0" or c.isspace() else c for c in text).replace("'", "").replace('"', "")
    safe = safe.lstrip(".") or "_"
    if len(safe) > MAX_LABEL:  # cut, with a digest of the whole so that two long labels stay apart
        safe = safe[: MAX_LABEL - 9] + "~" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return safe


def _model_file(run: Path) -> Path:
    """The model file eval will load for ``run`` (as :func:`~transferlab.rundir.reload.load_saved_model` does)."""
    return run / MODEL_FILE if run.is_dir() else run


def eval_label(overrides: Sequence[str], run: Path, run_dir: Path) -> str:
    """The evaluation's folder name under ``<run_dir>/eval/`` (see the module docstring).

    The overrides are named as given: ``data.seed=1`` tests the run's own split again (eval puts the split keys
    back), under its own label, so it never collides with (or is refused by) the plain ``test`` evaluation.
    """
    label = ",".join(overrides) if overrides else OWN_TEST_LABEL
    model = _model_file(run).resolve()
    if model != (run_dir / MODEL_FILE).resolve():
        try:
            relative = model.relative_to(run_dir.resolve())
            parts = relative.parts[1:] if relative.parts[:1] == (CHECKPOINTS_DIR,) else relative.parts
            label += "@" + "_".join(parts)
        except ValueError:  # a model outside the run dir cannot be found here (find_run_dir walks up)
            label += "@" + model.name
    return _safe(label)


def _check_writable(folder: Path) -> None:
    """Refuse a folder that cannot be made or written, naming it and the way out."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    problem = ""
    if not probe.is_dir():
        problem = f"{probe} is not a directory"
    else:
        try:
            with tempfile.TemporaryFile(dir=probe):
                pass
        except OSError as err:
            problem = f"{probe} is not writable ({err.strerror or type(err).__name__})"
    if problem:
        fail(
            f"{folder}: the evaluation's files cannot be written there: {problem}. Fix: pass --output-dir with a "
            "writable folder (e.g. --output-dir /tmp/eval), or make this one writable."
        )


def plan_target(run: Path, overrides: Sequence[str], output_dir: Path | None, force: bool) -> EvalTarget:
    """Decide where the evaluation writes; refuse (exit 2) before any work if it would overwrite or cannot write.

    Args:
        run: The ``RUN`` argument (run dir, ``model.safetensors`` or ``.ckpt``).
        overrides: The data overrides as given.
        output_dir: ``--output-dir``, or ``None``.
        force: ``--force``: replace the files of an earlier evaluation in the folder.
    """
    run = Path(run)
    run_dir = find_run_dir(run.resolve()) if run.exists() else None
    label = eval_label(overrides, run, run_dir) if run_dir is not None else _safe(",".join(overrides) or OWN_TEST_LABEL)
    if output_dir is not None:
        folder = Path(output_dir)
    elif run_dir is not None and is_finished(run_dir):
        folder = eval_dir(run_dir, label)
    else:
        where = "is not in a finished run dir" if run_dir is None else f"is in {run_dir}, which has not finished"
        note = f"{run} {where}: the interpretation is printed only; pass --output-dir DIR to write its files."
        return EvalTarget(None, label, note)
    if folder.exists() and not folder.is_dir():
        _check_writable(folder)  # names the file in the way
    existing = eval_outputs(folder) if folder.is_dir() else []
    if existing and not force:
        fail(
            f"{existing[0]} exists: an earlier evaluation wrote {len(existing)} file(s) in {folder}, and eval never "
            "overwrites them. Fix: pass --force to replace them, --output-dir DIR to write elsewhere, or move "
            "the folder away first."
        )
    _check_writable(folder)
    return EvalTarget(folder, label)
