"""Nodes of feature_extraction."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from comet_pipeline.config import FeatureParams, parse
from comet_pipeline.experiment import features_for

logger = logging.getLogger(__name__)


def extract(manifest: pd.DataFrame, features: dict[str, Any]) -> pd.DataFrame:
    """Fill the feature cache for every image of the manifest; return an index of what is cached."""
    params = parse(FeatureParams, features, "features")
    array = features_for(manifest, params, progress=True)
    logger.info("features ready: %d images, array shape %s (%s)", len(manifest), array.shape, array.dtype)
    return manifest[["sample_id", "category", "split"]].assign(
        backbone=params.backbone,
        resolution=params.resolution,
        views=array.shape[1],
        channels=array.shape[2],
        grid=f"{array.shape[3]}x{array.shape[4]}",
    )
