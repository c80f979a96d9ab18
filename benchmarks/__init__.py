"""Benchmarks of the transferlab framework (run from the repository root: ``python -m benchmarks.<name>``)."""
