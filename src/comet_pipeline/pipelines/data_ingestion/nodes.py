"""Nodes of data_ingestion: parameter parsing and I/O around ``comet_pipeline.data``."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd

from comet_pipeline.config import BuiltinDataParams, ContaminationParams, DataParams, parse
from comet_pipeline.data.contamination import contaminate
from comet_pipeline.data.readers import read_dataset
from comet_pipeline.data.synthetic import generate_dataset

logger = logging.getLogger(__name__)


def ingest(data: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate the built-in dataset if configured, then read the sample table and ingestion report."""
    params = parse(DataParams, data, "data")
    if params.source == "builtin":
        builtin = parse(BuiltinDataParams, params.builtin, "data.builtin")
        generate_dataset(params.root, categories=params.categories, **dataclasses.asdict(builtin))
    samples, report = read_dataset(params.root, list(params.categories), layout=params.layout, on_error=params.on_error)
    logger.info("ingested %d images from %s (%d problems reported)", len(samples), params.root, len(report))
    return samples, report


def contaminate_train(samples: pd.DataFrame, contamination: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move defective test images into train at the configured ratio; return manifest and summary."""
    params = parse(ContaminationParams, contamination, "contamination")
    return contaminate(samples, ratio=params.ratio, seed=params.seed, overlap=params.overlap)
