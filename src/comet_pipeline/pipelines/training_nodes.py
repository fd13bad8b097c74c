"""The training node shared by train_baseline and train_comet (they differ only in CoMet switches)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from comet_pipeline.config import FeatureParams, parse
from comet_pipeline.devices import resolve_device
from comet_pipeline.experiment import ModelSetup, load_category, parse_model_setups, train_cell, training_tables
from comet_pipeline.models import model_from_payload, model_payload
from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.parallel import map_jobs
from comet_pipeline.training.trainer import CoMetConfig

logger = logging.getLogger(__name__)

#: with ``train.checkpoints: true`` each run checkpoints to ``<CHECKPOINT_ROOT>/<strategy>/<category>__<model>/``
CHECKPOINT_ROOT = "data/06_models/checkpoints"


def _train_one(
    job: tuple[str, ModelSetup],
    manifest: pd.DataFrame,
    features: FeatureParams,
    comet: CoMetConfig,
    progress: bool,
) -> tuple[dict, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """Train one (category, model); the model comes back as a payload (FrEIA flows do not pickle)."""
    category, setup = job
    result = train_cell(load_category(manifest, category, features), setup, comet, progress=progress)
    return model_payload(result.model.cpu()), training_tables(f"{category}__{setup.name}", result)


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
    With ``train.workers > 1`` the (category, model) trainings run in that many
    worker processes (:func:`comet_pipeline.parallel.map_jobs`).
    """
    feature_params = parse(FeatureParams, features, "features")
    setups = parse_model_setups(train)
    comet_config = parse(CoMetConfig, comet, "comet") if comet is not None else CoMetConfig()
    strategy = "baseline" if comet is None else "comet"
    checkpoints = bool(train.get("checkpoints", False))
    workers = int(train.get("workers", 1))
    jobs = []
    for category in sorted(feature_index["category"].unique()):
        for setup in setups:
            if checkpoints:  # resumable: one folder per run, see parameters_train_baseline.yml
                folder = str(Path(CHECKPOINT_ROOT) / strategy / f"{category}__{setup.name}")
                setup = dataclasses.replace(setup, train=dataclasses.replace(setup.train, checkpoint_dir=folder))
            jobs.append((category, setup))
    train_one = functools.partial(
        _train_one, manifest=manifest, features=feature_params, comet=comet_config, progress=workers == 1
    )
    done = map_jobs(train_one, jobs, workers, f"train ({strategy})", unit="model")
    models = {  # back on the device they trained on, as train() leaves them
        f"{category}__{setup.name}": model_from_payload(payload).to(resolve_device(setup.train.device))
        for (category, setup), (payload, _) in zip(jobs, done)
    }
    history, weights, scores = (pd.concat(parts, ignore_index=True) for parts in zip(*(tables for _, tables in done)))
    return models, history, weights, scores
