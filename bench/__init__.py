"""Benchmarks (`make bench`): each measures a result beside its ceiling, in the same run."""
