"""Nodes of inference."""

from __future__ import annotations

from typing import Any

import pandas as pd

from comet_pipeline.config import parse
from comet_pipeline.inference import InferenceParams, score_source


def score_images(inference: dict[str, Any]) -> pd.DataFrame:
    """Score ``inference.images`` with ``inference.bundle``; overlays go to ``inference.output``/maps."""
    _, table = score_source(parse(InferenceParams, inference, "inference"), overwrite=True, progress=True)
    return table
