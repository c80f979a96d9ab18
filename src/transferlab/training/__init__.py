"""Training: the TransferModule, freezing rules, optimizers, loggers, export and the run engine."""
