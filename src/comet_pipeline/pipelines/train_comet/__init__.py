"""train_comet: train the configured detectors with CoMet (confident meta-learning)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
