"""reporting: paper-shaped tables, figures, HTML report and DVC metrics."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
