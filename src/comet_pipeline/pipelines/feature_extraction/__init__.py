"""feature_extraction: frozen-backbone features of every image, cached on disk."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
