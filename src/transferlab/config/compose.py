"""Composing the config with Hydra, and Hydra's composition errors as one-paragraph messages with a fix.

Hydra reports an unknown group option, an unknown key or an unparsable override over several lines (the
option list one per line, the config search path, a hint about ``HYDRA_FULL_ERROR``) and exits with status 1.
:func:`compose` turns each into a :class:`~transferlab.errors.ConfigError` naming the override, the bad value
and the fix, with a did-you-mean where a close name exists; the CLI prints it as ``transferlab: error: …``
and exits with status 2. ``transferlab train`` runs the same composition before it hands the command line to
its Hydra app (``cli/preflight.py``), so a bad override fails the same way there.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from transferlab.config.paths import conf_dir
from transferlab.errors import ConfigError

_OPTION = re.compile(r"[\w.-]+")
_SEE_DOCS = "See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for the override syntax."


def _compose_raw(overrides: Sequence[str], config_name: str, hydra_node: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="transferlab"):
        return hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra_node)


def compose(overrides: Sequence[str], config_name: str = "train", hydra_node: bool = False) -> DictConfig:
    """Compose the config tree as ``transferlab train`` would.

    Args:
        overrides: Hydra override strings (``group=option``, ``key=value``, ``+key=value``).
        config_name: Primary config name.
        hydra_node: Keep the ``hydra`` node (run and sweep dirs, mode, launcher).

    Returns:
        The composed config (without the ``hydra`` node unless ``hydra_node``).

    Raises:
        ConfigError: On an unknown group option, an unknown key or an override Hydra cannot parse; the message
            is one paragraph that names the override and the fix.
    """
    check_group_options(overrides)
    try:
        return _compose_raw(overrides, config_name, hydra_node)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(composition_message(err, overrides, config_name)) from None


def override_key(override: str) -> str:
    """The key (or group) an override sets: ``+trainer.foo=1`` → ``trainer.foo``."""
    return override.split("=", 1)[0].lstrip("+~")


def quote_override_value(value: str) -> str:
    """``value`` single-quoted for Hydra's override grammar (spaces, ``=``, commas and quotes survive)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def override_value(override: str) -> str:
    """The value an override sets, as written (``""`` for a deletion such as ``~key``)."""
    return override.split("=", 1)[1] if "=" in override else ""


def _options(group: str) -> list[str]:
    folder = conf_dir() / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _bad_option(group: str, option: str) -> ConfigError:
    options = _options(group)
    close = difflib.get_close_matches(option, options, n=1)
    hint = f"did you mean {group}={close[0]}? " if close else ""
    return ConfigError(
        f"{group}={option}: config group '{group}' has no option '{option}'; {hint}its options: "
        f"{', '.join(options)}. Fix: pick one of them ('transferlab ls {group}' describes each)."
    )


def check_group_options(overrides: Sequence[str]) -> None:
    """Reject ``group=option`` overrides that name no file in ``conf/<group>/``.

    Hydra rejects those itself for mandatory groups, but silently ignores them for optional ones
    (``experiment``, ``hparams_search``, ``debug``): ``experiment=typo`` would run the default job.

    Raises:
        ConfigError: Naming the group, the option and the options that exist.
    """
    for override in overrides:
        if "=" not in override or override.startswith("~"):
            continue
        group, option = override_key(override), override_value(override).strip()
        if group.startswith("hydra") or "." in group or option in ("", "null", "None"):
            continue
        if not (conf_dir() / group).is_dir() or not _OPTION.fullmatch(option):
            continue  # not a config group, or a sweep / list value that Hydra parses itself
        if not (conf_dir() / group / f"{option}.yaml").is_file():
            raise _bad_option(group, option)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    lines = [line for line in lines if "HYDRA_FULL_ERROR" not in line]
    return " ".join(lines)


def _missing_option(err: MissingConfigException) -> str | None:
    found = re.search(r"Could not find '([^']+)/([^'/]+)'", str(err))
    if not found:
        return None
    return str(_bad_option(found.group(1), found.group(2)))


def _unknown_key(err: HydraException, overrides: Sequence[str], config_name: str) -> str | None:
    found = re.search(r"Could not override '([^']+)'", str(err))
    cause = err.__cause__
    if not found or not isinstance(cause, OmegaConfBaseException) or "not in struct" not in str(cause):
        return None
    key = found.group(1)
    override = next((o for o in overrides if override_key(o) == key), f"{key}=...")
    missing = re.search(r"full_key: (\S+)", str(cause))
    bad_node = missing.group(1) if missing else key
    parent, _, leaf = bad_node.rpartition(".")
    hint = ""
    try:  # the keys that do exist there, from the config composed without the bad override
        others = [o for o in overrides if o != override]
        node = OmegaConf.select(_compose_raw(others, config_name), parent) if parent else None
        valid = [str(k) for k in node] if isinstance(node, DictConfig) else []
        close = difflib.get_close_matches(leaf, valid, n=1)
        if close:
            hint = f" Did you mean {parent}.{close[0]}?"
        elif valid:
            hint = f" Keys of {parent}: {', '.join(valid)}."
    except (HydraException, OmegaConfBaseException, ConfigError):
        pass
    where = f"'{parent}' has no key '{leaf}'" if parent else f"no top-level key '{leaf}'"
    return (
        f"{override}: unknown key ({where}).{hint} Fix: correct the spelling ('transferlab train --cfg job' "
        f"prints every key), or add a new key on purpose with +{key}={override_value(override) or '...'}."
    )


def unparsable(overrides: Sequence[str]) -> str | None:
    """The message for the first override Hydra cannot parse (``None`` when all parse)."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as err:
            detail = _one_line(str(err)).split(" See https://")[0]
            fix = f"Fix: quote the value for Hydra inside shell quotes, e.g. \"key='a b'\". {_SEE_DOCS}"
            return f"override {override!r} cannot be parsed ({detail}). {fix}"
    return None


def composition_message(err: BaseException, overrides: Sequence[str], config_name: str = "train") -> str:
    """One paragraph for a Hydra composition error: the override, what is wrong, the fix.

    Args:
        err: The exception Hydra (or OmegaConf) raised while composing.
        overrides: The overrides that were composed.
        config_name: Primary config name.
    """
    message = None
    if isinstance(err, MissingConfigException):
        message = _missing_option(err)
    elif isinstance(err, OverrideParseException):
        message = unparsable(overrides)
    elif isinstance(err, HydraException):
        message = _unknown_key(err, overrides, config_name)
    if message is None:
        message = _one_line(str(err))
        if err.__cause__ is not None:
            message += f" ({_one_line(str(err.__cause__))})"
    return message
