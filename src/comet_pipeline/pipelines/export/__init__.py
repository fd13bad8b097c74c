"""export: package the trained models into hand-off bundles (model, metadata, model card)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
