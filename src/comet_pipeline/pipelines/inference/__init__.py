"""inference: score a folder of images with a model bundle (scores table + anomaly-map overlays)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
