"""noise_sweep: I-AUROC vs contamination ratio for baseline and CoMet (the paper's Fig. 5)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
