"""User-facing errors.

Every error a user can cause derives from :class:`TransferlabError`. The CLI prints its message as one
paragraph (no stack trace) and exits non-zero. Messages name the key or file, the bad value and the fix.
"""

from __future__ import annotations


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
