"""Claiming a run dir: a new run gets a dir of its own, atomically, and holds it while it runs.

Two runs started in the same second would otherwise share the default ``runs/<time>`` dir and overwrite each
other. :func:`claim_new_dir` creates the dir with ``mkdir`` (atomic: exactly one process succeeds) and moves on
to ``<time>_1``, ``<time>_2``, … when it exists. :class:`RunDirLock` holds an exclusive ``flock`` on
``<run dir>/.transferlab.lock`` for the whole job, so a second process in the same dir (an explicit
``hydra.run.dir``, a sweep started twice) is refused while the first runs; the lock goes with the process,
also when it is killed.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from transferlab.errors import ConfigError
from transferlab.rundir.layout import LOCK_FILE

#: Suffixes tried after the plain name (``<time>_1`` … ``<time>_999``).
_MAX_SUFFIX = 999


class RunDirBusy(ConfigError):
    """Another process runs in this dir right now; nothing of it may be touched (no ``failure.json`` either)."""


def unwritable_dir_error(key: str, path: Path, err: OSError) -> ConfigError:
    """The one-paragraph error for a run or sweep dir that cannot be created or written."""
    reason = err.strerror or type(err).__name__
    return ConfigError(
        f"{key}={path}: cannot be created or written ({type(err).__name__}: {reason}). Fix: choose a folder you "
        f"can write, e.g. {key}=outputs/my_run, or paths.output_root=<writable dir> for the default dirs."
    )


def ensure_writable_dir(path: Path, key: str) -> Path:
    """Create ``path`` (and its parents) if needed and check that files can be written in it.

    Raises:
        ConfigError: Naming ``key`` when the dir cannot be created or written.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise unwritable_dir_error(key, path, err) from None
    return path


def claim_new_dir(path: Path, key: str) -> Path:
    """Create a dir that no other run has: ``path``, else ``path_1``, ``path_2``, … (atomic ``mkdir``).

    Raises:
        ConfigError: Naming ``key`` when the parent cannot be created or written, or every name is taken.
    """
    ensure_writable_dir(path.parent, key)
    for n in range(_MAX_SUFFIX + 1):
        candidate = path if n == 0 else path.with_name(f"{path.name}_{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise unwritable_dir_error(key, candidate, err) from None
        return candidate
    raise ConfigError(
        f"{key}={path}: {path.name} and {_MAX_SUFFIX} suffixed names are all taken. Fix: set {key}=<dir>."
    )


class RunDirLock:
    """An exclusive, non-blocking ``flock`` on ``<run dir>/.transferlab.lock`` (``with RunDirLock(dir):``).

    Args:
        run_dir: The job's dir (created if needed).
        key: The config key that chose the dir, for messages (``hydra.run.dir``).

    Raises:
        RunDirBusy: On entering, when another live process holds the dir.
        ConfigError: When the dir cannot be created or written.
    """

    def __init__(self, run_dir: Path, key: str = "hydra.run.dir") -> None:
        self.run_dir = Path(run_dir)
        self.key = key
        self._fd: int | None = None

    def __enter__(self) -> RunDirLock:
        ensure_writable_dir(self.run_dir, self.key)
        path = self.run_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirBusy(
                    f"{self.key}={self.run_dir}: another transferlab process (pid {holder}) is running in this dir; "
                    "two runs must not share one. Fix: wait for it to finish, or choose another dir (leave "
                    f"{self.key} to its timestamped default: every run then gets its own)."
                ) from None
            raise unwritable_dir_error(self.key, self.run_dir, err) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
