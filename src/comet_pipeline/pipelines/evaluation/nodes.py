"""Nodes of evaluation."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from comet_pipeline.config import ContaminationParams, EvaluationParams, FeatureParams, parse
from comet_pipeline.experiment import evaluate_cell, load_category, parse_model_setups
from comet_pipeline.models.base import AnomalyModel

logger = logging.getLogger(__name__)


def evaluate_models(
    manifest: pd.DataFrame,
    baseline_models: dict[str, AnomalyModel],
    baseline_train_scores: pd.DataFrame,
    comet_models: dict[str, AnomalyModel],
    comet_train_scores: pd.DataFrame,
    features: dict[str, Any],
    train: dict[str, Any],
    evaluation: dict[str, Any],
    contamination: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row of metrics per (category, model, strategy) and one row per scored test image."""
    feature_params = parse(FeatureParams, features, "features")
    params = parse(EvaluationParams, evaluation, "evaluation")
    ratio = parse(ContaminationParams, contamination, "contamination").ratio
    seeds = {setup.name: setup.train.seed for setup in parse_model_setups(train)}
    runs = {"baseline": (baseline_models, baseline_train_scores), "comet": (comet_models, comet_train_scores)}
    cache: dict[str, Any] = {}
    results, per_image = [], []
    for strategy, (models, train_scores) in runs.items():
        for key, model in sorted(models.items()):
            category, model_name = key.split("__")
            if category not in cache:
                cache[category] = load_category(manifest, category, feature_params)
            run_scores = train_scores[train_scores["key"] == key]
            metrics, images = evaluate_cell(model, cache[category], run_scores, params)
            logger.info("%s %s %s: I-AUROC %.3f", strategy, category, model_name, metrics["i_auroc"])
            row = {"category": category, "model": model_name, "strategy": strategy, "ratio": ratio}
            results.append({**row, "seed": seeds.get(model_name, 0), **metrics})
            per_image.append(images.assign(model=model_name, strategy=strategy))
    return pd.DataFrame(results), pd.concat(per_image, ignore_index=True)
