"""Regularised fine-tuning: penalties that keep the model near its starting point (``regularizer=``)."""

from transferlab.regularizers.factory import build_regularizer

__all__ = ["build_regularizer"]
