"""train_baseline: train the configured detectors the usual way (every CoMet switch off)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
