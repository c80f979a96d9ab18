"""What ``transferlab train`` checks before its Hydra app starts, so that no dir is written for a bad command.

Hydra creates the job's dir (and its log) before the task runs: a bad value would leave a dir with a failed
run in it, an output dir that cannot be created would end in Hydra's traceback, and two runs started in the
same second would share the default ``runs/<time>`` dir. :func:`preflight` therefore, for a plain run or a
sweep (``-m``):

1. composes the config (an unknown option or key, or an override Hydra cannot parse, is a config error);
2. for a single run, parses it with the run's own parsers (every bad value ends here, before anything is
   written; a sweep's jobs are checked one by one, since their swept values differ);
3. checks an explicit ``hydra.run.dir`` / ``hydra.sweep.dir`` (a finished run is never started again in its
   dir, nor a run in a dir another live run holds; the dir must be creatable and writable), or claims a fresh
   default dir atomically and passes it to Hydra explicitly.

Any other flag (``--cfg``, ``--help``, ``-cn`` …) is left to Hydra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from transferlab.config.compose import compose, override_key, override_value, quote_override_value, unparsable
from transferlab.errors import ConfigError
from transferlab.rundir.claim import RunDirLock, claim_new_dir, ensure_writable_dir
from transferlab.rundir.finished import refuse_finished
from transferlab.rundir.layout import is_finished

MULTIRUN_FLAGS = ("-m", "--multirun")
RUN_DIR, SWEEP_DIR = "hydra.run.dir", "hydra.sweep.dir"


def _explicit(overrides: Sequence[str], key: str) -> str | None:
    values = [override_value(o).strip().strip("'\"") for o in overrides if override_key(o) == key]
    return values[-1] if values else None


def _resolved_dir(cfg: DictConfig, key: str) -> Path:
    try:
        return Path(str(OmegaConf.select(cfg, key, throw_on_missing=True))).expanduser()
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}: cannot be resolved ({' '.join(str(err).split()[:20])}).") from None


def _is_rank_zero() -> bool:
    """Whether this process is rank 0 (DDP ranks > 0 run in rank 0's dir, which rank 0 holds)."""
    from transferlab.run.distributed import is_rank_zero

    return is_rank_zero()


def _is_resume(overrides: Sequence[str]) -> bool:
    return any(override_key(o) == "resume" and override_value(o).strip().lower() == "true" for o in overrides)


def _sweep_base(overrides: list[str]) -> list[str]:
    """A sweep's overrides without its swept ones (Hydra expands those per job)."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        raise ConfigError(unparsable(overrides) or "an override cannot be parsed.") from None
    return [p.input_line for p in parsed if not p.is_sweep_override() and p.input_line]


def preflight(argv: Sequence[str]) -> list[str]:
    """Check a ``transferlab train`` command line (see the module docstring) and return the one to run.

    Returns:
        ``argv``, plus ``hydra.run.dir=…`` / ``hydra.sweep.dir=…`` when a default dir was claimed.

    Raises:
        ConfigError: On a composition error, a bad value, a finished or unwritable run dir.
    """
    argv = list(argv)
    flags = [a for a in argv if a.startswith("-")]
    if any(flag not in MULTIRUN_FLAGS for flag in flags):
        return argv
    overrides = [a for a in argv if not a.startswith("-")]
    multirun = bool(flags)
    base = _sweep_base(overrides) if multirun else overrides
    cfg = compose(base, hydra_node=True)
    # hparams_search configs set hydra.mode=MULTIRUN themselves
    multirun = multirun or str(OmegaConf.select(cfg, "hydra.mode", default="")).endswith("MULTIRUN")
    if multirun:
        return argv + _dir_override(cfg, overrides, SWEEP_DIR)
    explicit = _explicit(overrides, RUN_DIR)
    if not (explicit is not None and _is_resume(overrides) and is_finished(Path(explicit).expanduser())):
        from transferlab.run.spec import parse_config  # heavy imports only once the command line composed

        job = cfg.copy()
        with open_dict(job):
            del job["hydra"]
        parse_config(job)  # a finished run that is resumed is only read back, whatever its config says now
    return argv + _dir_override(cfg, overrides, RUN_DIR)


def _dir_override(cfg: DictConfig, overrides: Sequence[str], key: str) -> list[str]:
    explicit = _explicit(overrides, key)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if key == RUN_DIR and is_finished(path) and not _is_resume(overrides):
            raise refuse_finished(path)
        ensure_writable_dir(path, key)
        if key == RUN_DIR and _is_rank_zero():
            with RunDirLock(path, key):  # another live run holds it: refuse before Hydra appends to its log
                pass
        return []
    claimed = claim_new_dir(_resolved_dir(cfg, key), key)
    return [f"{key}={quote_override_value(str(claimed))}"]
