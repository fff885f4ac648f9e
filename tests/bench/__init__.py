"""Benchmarks (`make bench`): run from the repository root as `python -m tests.bench.<name>`."""
