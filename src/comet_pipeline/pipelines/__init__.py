"""Kedro pipelines: thin wiring around the science modules."""
