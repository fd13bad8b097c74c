"""Nodes of export."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import pandas as pd

from comet_pipeline.bundle import BackboneIdentity, BundleMeta, Calibration
from comet_pipeline.config import ContaminationParams, EvaluationParams, FeatureParams, ThresholdParams, parse
from comet_pipeline.experiment import parse_model_setups
from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.training.trainer import CoMetConfig

logger = logging.getLogger(__name__)

#: evaluation_results columns that describe the run rather than measure it
_KEY_COLUMNS = {"category", "model", "strategy", "ratio", "seed"}


def _metrics(results: pd.DataFrame, category: str, model: str, strategy: str) -> dict[str, float | None]:
    """The evaluation metrics of one run (empty when it was not evaluated); NaN becomes None (valid JSON)."""
    rows = results[(results["category"] == category) & (results["model"] == model) & (results["strategy"] == strategy)]
    if rows.empty:
        logger.warning("no evaluation results for %s %s %s; its bundle has no metrics", strategy, category, model)
        return {}
    row = rows.iloc[-1]
    values = {k: float(v) for k, v in row.items() if k not in _KEY_COLUMNS and isinstance(v, (int, float))}
    return {k: (None if math.isnan(v) else v) for k, v in values.items()}


def bundle_models(
    manifest: pd.DataFrame,
    baseline_models: dict[str, AnomalyModel],
    baseline_train_scores: pd.DataFrame,
    comet_models: dict[str, AnomalyModel],
    comet_train_scores: pd.DataFrame,
    evaluation_results: pd.DataFrame,
    features: dict[str, Any],
    train: dict[str, Any],
    comet: dict[str, Any],
    evaluation: dict[str, Any],
    contamination: dict[str, Any],
) -> dict[str, tuple[AnomalyModel, BundleMeta]]:
    """``{"<strategy>__<category>__<model>": (model, meta)}`` for every trained model."""
    eval_params = parse(EvaluationParams, evaluation, "evaluation")
    threshold = parse(ThresholdParams, eval_params.threshold, "evaluation.threshold")
    ratio = parse(ContaminationParams, contamination, "contamination").ratio
    optims = {setup.name: dataclasses.asdict(setup.train) for setup in parse_model_setups(train)}
    settings = {"baseline": CoMetConfig(), "comet": parse(CoMetConfig, comet, "comet")}
    backbone = BackboneIdentity.from_params(parse(FeatureParams, features, "features"))
    train_rows = manifest[manifest["split"] == "train"]
    runs = {"baseline": (baseline_models, baseline_train_scores), "comet": (comet_models, comet_train_scores)}
    bundles = {}
    for strategy, (models, train_scores) in runs.items():
        for key, model in sorted(models.items()):
            category, model_name = key.split("__")
            rows = train_rows[train_rows["category"] == category]
            meta = BundleMeta(
                category=category,
                strategy=strategy,
                backbone=backbone,
                calibration=Calibration.from_train_scores(train_scores[train_scores["key"] == key], threshold),
                map_size=eval_params.map_size,
                contamination_ratio=ratio,
                n_train_images=len(rows),
                n_injected=int(rows["injected"].sum()),
                comet=dataclasses.asdict(settings[strategy]),
                optim=optims.get(model_name, {}),
                metrics=_metrics(evaluation_results, category, model_name, strategy),
            )
            bundles[f"{strategy}__{key}"] = (model, meta)
    logger.info("packaged %d model bundles", len(bundles))
    return bundles
