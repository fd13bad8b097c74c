"""comet-pipeline: CoMet (Confident Meta-Learning) anomaly detection on uncurated image sets."""

__version__ = "0.1.0"
