"""Benchmarks of the comet-pipeline project (run ``make bench`` or ``python -m benchmarks.<name>``)."""
