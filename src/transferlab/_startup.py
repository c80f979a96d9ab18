"""Process start-up: keep torchmetrics from importing ``transformers`` that transferlab never uses.

Lightning imports torchmetrics, whose text and multimodal metrics (BERTScore, InfoLM, CLIPScore) import
``transformers`` at module level when it is installed, and peft installs it. That import costs ~1.5-2.5 s of
every ``transferlab`` process on a 2-core machine (``python -X importtime``), i.e. minutes of a test suite that
runs the CLI in subprocesses. transferlab computes none of those metrics, so before torchmetrics loads them its
"transformers is available" flags are set to false; those metric classes are then simply not exported.
peft, which does need ``transformers``, imports it itself and is unaffected.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys

#: The torchmetrics packages whose import pulls ``transformers`` in.
_GUARDED = (
    "torchmetrics.functional.text",
    "torchmetrics.functional.multimodal",
    "torchmetrics.text",
    "torchmetrics.multimodal",
)
_FLAGS = ("_TRANSFORMERS_AVAILABLE", "_TRANSFORMERS_GREATER_EQUAL_4_4", "_TRANSFORMERS_GREATER_EQUAL_4_10")


class _SkipTransformersMetrics(importlib.abc.MetaPathFinder):
    """A finder that finds nothing: it only clears the flags just before a guarded package is imported."""

    def __init__(self) -> None:
        self._busy = False

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        """Clear torchmetrics' transformers flags when a guarded package is about to load."""
        if self._busy or fullname not in _GUARDED:
            return None
        self._busy = True
        try:
            flags = importlib.import_module("torchmetrics.utilities.imports")
            for name in _FLAGS:
                if hasattr(flags, name):
                    setattr(flags, name, False)
        except ImportError:  # an unexpected torchmetrics layout: leave it as it is
            pass
        finally:
            self._busy = False
        return None


def install() -> None:
    """Install the finder once (idempotent), unless torchmetrics' text metrics are already loaded."""
    if any(isinstance(f, _SkipTransformersMetrics) for f in sys.meta_path):
        return
    if "torchmetrics.functional.text" in sys.modules:
        return
    sys.meta_path.insert(0, _SkipTransformersMetrics())
