"""User-facing errors.

Every error a user can cause derives from :class:`TransferlabError`. The CLI prints its message as one
paragraph (no stack trace) and exits non-zero. Messages name the key or file, the bad value and the fix.
"""

from __future__ import annotations

_WORKER_TRACEBACK = "Original Traceback (most recent call last):"


class TransferlabError(Exception):
    """Base class of errors caused by user input (configs, files, names)."""


class ConfigError(TransferlabError, ValueError):
    """A config value is wrong: the message names the key, the value and the fix."""


class UnknownBackboneError(TransferlabError, KeyError):
    """A backbone name is not in the registry; the message suggests the closest registered names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WeightsError(TransferlabError, RuntimeError):
    """Weights cannot be loaded: missing, truncated, foreign or unsafe file, or hub download offline."""


class DataError(TransferlabError, RuntimeError):
    """A data set cannot be built: missing folder, empty class, download needed while offline."""


def user_message(err: BaseException) -> str:
    """The one-paragraph message of a user error, as the CLI prints it.

    An error raised inside a ``DataLoader`` worker process reaches the main process re-created with the
    worker's traceback as its text (``Caught DataError in DataLoader worker process 0. Original Traceback …``);
    the message the user needs is the last line of that traceback, without the exception's class path.

    Args:
        err: The exception.

    Returns:
        Its message on one line.
    """
    text = str(err)
    if _WORKER_TRACEBACK in text:
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        head, sep, rest = last.partition(": ")
        text = rest if sep and head.endswith(type(err).__name__) else last
    return " ".join(text.split())


class TrainingDivergedError(TransferlabError):
    """The training loss became NaN or infinite; the run stops before that step updates the weights (on CPU)."""


class ResumeError(TransferlabError):
    """A run cannot be resumed: no checkpoint, or none that can be read."""


class RunInterrupted(BaseException):
    """The run was stopped by a signal (SIGINT/SIGTERM); it can be continued with ``transferlab resume``.

    A ``BaseException`` so that no ``except Exception`` on the way out (Hydra's job runner, DataLoader
    clean-up, a sweeper) mistakes it for a failed job.

    Args:
        signum: The signal number.
        message: One line: what was saved and how to continue.
    """

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.message = message

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM (the shell's convention)."""
        return 128 + self.signum
