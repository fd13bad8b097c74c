"""One experiment cell, shared by the train/evaluation pipelines and the noise sweep.

A cell is (category, model, strategy): build the detector, train it on the
category's (possibly contaminated) train split and evaluate it on the test
split. The decision threshold comes from the held-out part of the *training*
data (label-free); test labels are used only to compute metrics.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from comet_pipeline.config import ConfigError, EvaluationParams, FeatureParams, ThresholdParams, collect
from comet_pipeline.data.images import load_mask
from comet_pipeline.evaluation.metrics import curation_auroc, evaluate, threshold_from_scores
from comet_pipeline.features.backbones import BackboneSpec
from comet_pipeline.features.cache import extract_features
from comet_pipeline.models import MODELS, build_model
from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.training.trainer import CoMetConfig, TrainConfig, TrainResult, anomaly_maps, score_features, train

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ModelSetup:
    """A detector's constructor arguments and its optimisation settings."""

    name: str
    kwargs: dict[str, Any]
    train: TrainConfig


@dataclasses.dataclass(frozen=True)
class CategoryData:
    """Manifest rows and cached features of one category, split into train and test."""

    category: str
    train: pd.DataFrame
    test: pd.DataFrame
    train_features: np.ndarray
    test_features: np.ndarray


def parse_model_setups(train_params: dict[str, Any]) -> list[ModelSetup]:
    """Validate ``train`` parameters: ``models`` plus one ``{model: {...}, optim: {...}}`` block per model."""
    problems: list[str] = []
    train_params = dict(train_params or {})
    names = list(train_params.get("models") or [])
    if not names:
        problems.append("train.models: expected a non-empty list of model names")
    allowed = {"models", "checkpoints", "workers", *MODELS}
    for key in sorted(set(train_params) - allowed):
        problems.append(f"train.{key}: unknown key; expected one of {sorted(allowed)}")
    if not isinstance(train_params.get("checkpoints", False), bool):
        problems.append(f"train.checkpoints: got {train_params['checkpoints']!r}, expected true or false")
    workers = train_params.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        problems.append(f"train.workers: got {workers!r}, expected an integer >= 1")
    setups = []
    for name in names:
        if name not in MODELS:
            problems.append(f"train.models: unknown model {name!r}; expected one of {sorted(MODELS)}")
            continue
        block = dict(train_params.get(name) or {})
        for key in sorted(set(block) - {"model", "optim"}):
            problems.append(f"train.{name}.{key}: unknown key; expected 'model' or 'optim'")
        kwargs = dict(block.get("model") or {})
        accepted = set(inspect.signature(MODELS[name].__init__).parameters) - {"self", "in_channels"}
        for key in sorted(set(kwargs) - accepted):
            problems.append(f"train.{name}.model.{key}: unknown key; expected one of {sorted(accepted)}")
        optim = block.get("optim")
        if isinstance(optim, dict) and "checkpoint_dir" in optim:
            problems.append(
                f"train.{name}.optim.checkpoint_dir: not set per model; use train.checkpoints: true "
                "(one folder per category and model under data/06_models/checkpoints/<strategy>/)"
            )
            optim = {k: v for k, v in optim.items() if k != "checkpoint_dir"}
        config = collect(TrainConfig, optim, f"train.{name}.optim", problems)
        if config is not None:
            setups.append(ModelSetup(name, kwargs, config))
    if problems:
        raise ConfigError(problems)
    return setups


def backbone_spec(params: FeatureParams) -> BackboneSpec:
    """The backbone identity used for extraction and cache keys."""
    return BackboneSpec(
        name=params.backbone, layers=tuple(params.layers), resolution=params.resolution, weights_path=params.weights_path
    )


def features_for(rows: pd.DataFrame, params: FeatureParams, progress: bool = False) -> np.ndarray:
    """Cached backbone features ``(N, R, C, h, w)`` of ``rows`` (extracts only what is not cached)."""
    return extract_features(
        rows["path"].tolist(),
        backbone_spec(params),
        rotations=tuple(params.rotations),
        cache_dir=params.cache_dir,
        batch_size=params.batch_size,
        device=params.device,
        num_workers=params.num_workers,
        progress=progress,
    )


def load_category(manifest: pd.DataFrame, category: str, params: FeatureParams) -> CategoryData:
    """Split one category of the manifest and fetch its cached features."""
    rows = manifest[manifest["category"] == category].reset_index(drop=True)
    train_rows = rows[rows["split"] == "train"].reset_index(drop=True)
    test_rows = rows[rows["split"] == "test"].reset_index(drop=True)
    if train_rows.empty:
        raise ValueError(f"category {category!r} has no training images in the manifest")
    if test_rows.empty:
        raise ValueError(f"category {category!r} has no test images in the manifest")
    return CategoryData(
        category, train_rows, test_rows, features_for(train_rows, params), features_for(test_rows, params)
    )


def model_views(model: AnomalyModel, features: np.ndarray) -> np.ndarray:
    """All rotation views for multi-view models, view 0 otherwise."""
    return features if model.multi_view else features[:, :1]


def train_cell(
    data: CategoryData, setup: ModelSetup, comet: CoMetConfig, seed: int | None = None, progress: bool = False
) -> TrainResult:
    """Train ``setup`` on ``data.train`` with the given CoMet switches (all off = baseline)."""
    config = setup.train if seed is None else dataclasses.replace(setup.train, seed=seed)
    torch.manual_seed(config.seed)  # the initial weights, too, come from the seed
    model = build_model(setup.name, in_channels=data.train_features.shape[2], **setup.kwargs)
    features = model_views(model, data.train_features)
    logger.info("training %s on %s (%d images, CoMet %s)", setup.name, data.category, len(features), comet.enabled)
    return train(model, features, data.train["sample_id"].tolist(), config, comet, progress=progress)


def test_masks(rows: pd.DataFrame, size: int) -> np.ndarray | None:
    """Ground-truth masks of the test rows resized to ``size``²; None when the dataset has no masks."""
    if not (rows["mask_path"] != "").any():
        return None
    masks = np.zeros((len(rows), size, size), dtype=bool)
    for i, row in enumerate(rows.itertuples()):
        if row.mask_path:
            mask = Image.fromarray(load_mask(row.mask_path, image_path=row.path).astype(np.uint8) * 255)
            masks[i] = np.asarray(mask.resize((size, size), Image.NEAREST)) > 0
    return masks


def training_tables(key: str, result: TrainResult) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """History, per-epoch weights and final train/validation scores of one run, tagged with ``key``.

    The final table's ``weight`` is ``w`` from the final model's scores; ``mean_weight`` is
    the mean of the weights an image trained with over the re-weighting epochs (1.0 for
    validation images and for runs without confidence weighting).
    """
    ids = [*result.train_ids, *result.val_ids]
    during = result.weights[~result.weights["final"]]
    mean_weight = during.groupby("sample_id")["weight"].mean().reindex(ids).fillna(1.0)
    final = pd.DataFrame(
        {
            "sample_id": ids,
            "role": ["train"] * len(result.train_ids) + ["val"] * len(result.val_ids),
            "score": np.concatenate([result.train_scores, result.val_scores]),
            "weight": result.final_weights.reindex(ids).to_numpy(),
            "mean_weight": mean_weight.to_numpy(dtype=np.float64),
        }
    )
    return tuple(table.assign(key=key) for table in (result.history, result.weights, final))  # type: ignore[return-value]


def held_out_scores(train_scores: pd.DataFrame) -> np.ndarray:
    """Scores the label-free threshold is set from: the validation split; all of train if it has < 4 images."""
    val = train_scores.loc[train_scores["role"] == "val", "score"]
    return (val if len(val) >= 4 else train_scores["score"]).to_numpy(dtype=np.float64)


def label_free_threshold(train_scores: pd.DataFrame, params: ThresholdParams) -> float:
    """Threshold from held-out training scores (see :func:`held_out_scores`)."""
    scores = held_out_scores(train_scores)
    return threshold_from_scores(scores, method=params.method, kappa=params.kappa, quantile=params.quantile)


def evaluate_cell(
    model: AnomalyModel, data: CategoryData, train_scores: pd.DataFrame, params: EvaluationParams
) -> tuple[dict[str, float], pd.DataFrame]:
    """Test metrics at the label-free threshold, per-image test scores, and curation AUROC on train.

    ``train_scores`` is this run's table from :func:`training_tables` (scores and
    CoMet weights of the training images). ``curation_auroc``: AUROC of ``1 − w`` (final
    weights, training and validation images) for the injected images;
    ``curation_auroc_mean_weight``: the same for the mean weight each training image got
    over the re-weighting epochs (training images only: validation images are never weighted).
    """
    threshold = label_free_threshold(train_scores, ThresholdParams(**params.threshold))
    features = model_views(model, data.test_features)
    scores = score_features(model, features)
    masks = test_masks(data.test, params.map_size)
    maps = anomaly_maps(model, features, (params.map_size, params.map_size)) if masks is not None else None
    labels = data.test["label"].to_numpy()
    metrics = evaluate(labels, scores, masks=masks, maps=maps, threshold=threshold)
    table = train_scores.set_index("sample_id")
    injected = data.train.set_index("sample_id")["injected"].reindex(table.index).to_numpy(dtype=bool)
    metrics["curation_auroc"] = curation_auroc(injected, table["weight"].to_numpy())
    trained = (table["role"] == "train").to_numpy()
    metrics["curation_auroc_mean_weight"] = curation_auroc(injected[trained], table["mean_weight"].to_numpy()[trained])
    per_image = data.test[["sample_id", "category", "label", "defect_type"]].assign(
        score=scores, predicted=(scores >= threshold).astype(int)
    )
    return metrics, per_image
