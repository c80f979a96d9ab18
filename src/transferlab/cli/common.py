"""Helpers shared by the subcommands: composing configs with Hydra and reporting errors in one paragraph."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from omegaconf import DictConfig

from transferlab.config.compose import compose
from transferlab.errors import ConfigError, TransferlabError, user_message

EXIT_USER_ERROR = 2


def fail(message: str) -> NoReturn:
    """Print ``transferlab: error: <message>`` to stderr and exit with status 2."""
    print(f"transferlab: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USER_ERROR)


def compose_config(overrides: Sequence[str], config_name: str = "train") -> DictConfig:
    """Compose the config tree with Hydra's compose API, as ``transferlab train`` would.

    Args:
        overrides: Hydra override strings (``group=option``, ``key=value``, ``+key=value``).
        config_name: Primary config name.

    Returns:
        The composed config (``hydra`` node removed).

    Raises:
        TransferlabError: Never; composition errors exit via :func:`fail` with one paragraph naming the override
            and the fix (see :mod:`transferlab.config.compose`).
    """
    try:
        return compose(overrides, config_name)
    except ConfigError as err:
        fail(str(err))


def user_errors_exit(func):
    """Turn :class:`TransferlabError` into a one-paragraph message and exit status 2."""

    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TransferlabError as err:
            fail(user_message(err))

    wrapper.__doc__ = func.__doc__
    wrapper.__name__ = func.__name__
    return wrapper


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-written examples in each ``--help`` epilog as they are."""
