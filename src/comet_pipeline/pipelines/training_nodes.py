"""The training node shared by train_baseline and train_comet (they differ only in CoMet switches)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from comet_pipeline.config import FeatureParams, parse
from comet_pipeline.experiment import load_category, parse_model_setups, train_cell, training_tables
from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.training.trainer import CoMetConfig

logger = logging.getLogger(__name__)

#: with ``train.checkpoints: true`` each run checkpoints to ``<CHECKPOINT_ROOT>/<strategy>/<category>__<model>/``
CHECKPOINT_ROOT = "data/06_models/checkpoints"


def train_models(
    manifest: pd.DataFrame,
    feature_index: pd.DataFrame,
    features: dict[str, Any],
    train: dict[str, Any],
    comet: dict[str, Any] | None = None,
) -> tuple[dict[str, AnomalyModel], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train every configured model on every category; ``comet=None`` is the baseline.

    Returns models keyed ``"<category>__<model>"``, the per-epoch history, the
    per-epoch confidence weights and the final train/validation scores.
    ``feature_index`` is only a dependency: features come from the cache it indexes.
    """
    feature_params = parse(FeatureParams, features, "features")
    setups = parse_model_setups(train)
    comet_config = parse(CoMetConfig, comet, "comet") if comet is not None else CoMetConfig()
    strategy = "baseline" if comet is None else "comet"
    checkpoints = bool(train.get("checkpoints", False))
    models, tables = {}, []
    for category in sorted(feature_index["category"].unique()):
        data = load_category(manifest, category, feature_params)
        for setup in setups:
            key = f"{category}__{setup.name}"
            if checkpoints:  # resumable: one folder per run, see parameters_train_baseline.yml
                folder = str(Path(CHECKPOINT_ROOT) / strategy / key)
                run = dataclasses.replace(setup, train=dataclasses.replace(setup.train, checkpoint_dir=folder))
            else:
                run = setup
            result = train_cell(data, run, comet_config, progress=True)
            models[key] = result.model
            tables.append(training_tables(key, result))
    history, weights, scores = (pd.concat(parts, ignore_index=True) for parts in zip(*tables))
    return models, history, weights, scores
