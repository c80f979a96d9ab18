"""Where the packaged ``conf/`` tree lives: wheel install, editable install or plain checkout."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CONF_DIR = "TRANSFERLAB_CONF_DIR"


def conf_dir() -> Path:
    """Return the absolute path of the ``conf/`` tree.

    A wheel ships ``conf/`` as ``transferlab/conf``; an editable install or a checkout finds it at the top of
    the repository (``src/transferlab/../../conf``). ``$TRANSFERLAB_CONF_DIR`` overrides both.

    Raises:
        FileNotFoundError: if no config tree is found.
    """
    env = os.environ.get(ENV_CONF_DIR)
    candidates = [Path(env)] if env else []
    package = Path(__file__).resolve().parents[1]  # src/transferlab (this file is config/paths.py)
    candidates += [package / "conf", package.parents[1] / "conf"]
    for path in candidates:
        if (path / "train.yaml").is_file():
            return path
    raise FileNotFoundError(
        f"transferlab: no config tree found (looked in {', '.join(str(c) for c in candidates)}). "
        f"Reinstall the package or set ${ENV_CONF_DIR} to a folder that holds train.yaml."
    )
