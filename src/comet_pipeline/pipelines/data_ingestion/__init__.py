"""data_ingestion: read (or generate) the image folders and contaminate the training set."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
