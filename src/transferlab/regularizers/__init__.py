"""Regularised fine-tuning: penalties that keep the model near its starting point (``regularizer=``).

Each regularizer registers itself (:mod:`transferlab.regularizers.registry`); import from the modules.
"""
