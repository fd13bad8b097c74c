"""Anomaly-detection metrics (image and pixel level) and label-free thresholds."""
