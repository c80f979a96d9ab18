"""Transferability estimators: score a pretrained model from its frozen features on the target data.

Pure functions of tensors (features, labels, the source classifier's probabilities), each from its paper;
they know nothing of runs. ``transferlab rank`` computes the inputs and writes the table.
"""

from transferlab.ranking.gbc import gbc
from transferlab.ranking.hscore import h_score, h_score_plain, ledoit_wolf
from transferlab.ranking.leep import leep
from transferlab.ranking.logme import logme
from transferlab.ranking.nce import nce
from transferlab.ranking.registry import ESTIMATORS, Estimator, ScoreInputs, parse_estimators

__all__ = [
    "ESTIMATORS",
    "Estimator",
    "ScoreInputs",
    "gbc",
    "h_score",
    "h_score_plain",
    "ledoit_wolf",
    "leep",
    "logme",
    "nce",
    "parse_estimators",
]
