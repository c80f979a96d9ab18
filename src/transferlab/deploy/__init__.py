"""From a run to a model people use: reload it for inference, predict files, export it with its preprocessing."""
