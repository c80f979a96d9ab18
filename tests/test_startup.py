"""Process start-up: transferlab keeps torchmetrics from importing ``transformers`` (seconds per CLI process)."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_lightning_after_transferlab_leaves_transformers_unimported() -> None:
    out = _run(
        "import transferlab, lightning.pytorch, torchmetrics, sys;"
        "from torchmetrics.classification import MulticlassAccuracy;"
        "import torch;"
        'm = MulticlassAccuracy(num_classes=3, average="micro");'
        "m.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]));"
        "print('transformers' in sys.modules, round(float(m.compute()), 4))"
    )
    assert out == "False 0.6667"


def test_peft_still_imports_transformers_itself() -> None:
    out = _run("import transferlab, lightning.pytorch, peft, sys; print('transformers' in sys.modules)")
    assert out == "True"
