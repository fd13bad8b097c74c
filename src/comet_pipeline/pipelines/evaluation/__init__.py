"""evaluation: test metrics of baseline and CoMet models at a label-free threshold."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
