"""Model bundles: one self-describing folder per trained detector, for hand-off.

Layout of a bundle directory::

    model.pt        the detector (models.save_model: tensors + plain config, weights_only)
    bundle.json     everything needed to score new images reproducibly (see BundleMeta)
    MODEL_CARD.md   a generated, human-readable model card

The backbone itself is not copied: ``bundle.json`` names it (architecture, layers,
resolution, rotation views) and records the SHA-256 of its weights file, which
:func:`load_bundle` checks against the local copy. Scores are made comparable
across bundles by a normalised score ``(score - median) / IQR`` of the held-out
training scores, the same label-free scores the decision threshold is set from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from comet_pipeline import __version__
from comet_pipeline.config import FeatureParams, ThresholdParams
from comet_pipeline.data.images import ImageReadError
from comet_pipeline.devices import resolve_device
from comet_pipeline.experiment import held_out_scores, label_free_threshold
from comet_pipeline.features.backbones import BackboneSpec, FeatureExtractor, sha256_file, verify_weights
from comet_pipeline.features.cache import load_resized, rotation_views
from comet_pipeline.models import load_model, save_model
from comet_pipeline.models.base import AnomalyModel

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_FILE = "model.pt"
META_FILE = "bundle.json"
CARD_FILE = "MODEL_CARD.md"


class BundleError(Exception):
    """A bundle directory that is missing, incomplete, corrupt or does not match the local backbone."""


@dataclasses.dataclass(frozen=True)
class BackboneIdentity:
    """The frozen feature extractor a model was trained on, and the views it sees."""

    name: str
    layers: tuple[str, ...]
    resolution: int
    rotations: tuple[int, ...]
    weights_sha256: str
    weights_path: str | None = None

    @classmethod
    def from_params(cls, params: FeatureParams) -> BackboneIdentity:
        """Identity of the configured backbone (hashes its local weights file)."""
        spec = BackboneSpec(params.backbone, tuple(params.layers), params.resolution, params.weights_path)
        _, digest = verify_weights(spec)
        return cls(spec.name, spec.layers, spec.resolution, tuple(params.rotations), digest, params.weights_path)

    def spec(self, weights_path: str | None = None) -> BackboneSpec:
        """The :class:`BackboneSpec`; ``weights_path`` overrides the recorded file location."""
        return BackboneSpec(self.name, self.layers, self.resolution, weights_path or self.weights_path)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Label-free decision threshold and score normalisation, both from held-out training scores."""

    threshold: float
    method: str
    kappa: float
    quantile: float
    median: float
    iqr: float
    n_scores: int
    source: str

    @classmethod
    def from_train_scores(cls, train_scores: pd.DataFrame, params: ThresholdParams) -> Calibration:
        """From one run's train/validation score table (columns ``role``, ``score``)."""
        scores = held_out_scores(train_scores)
        q1, median, q3 = np.quantile(scores, [0.25, 0.5, 0.75])
        n_val = int((train_scores["role"] == "val").sum())
        source = (
            f"{len(scores)} held-out validation images of the uncurated training set"
            if len(scores) == n_val
            else f"all {len(scores)} training images (fewer than 4 held out)"
        )
        return cls(
            threshold=label_free_threshold(train_scores, params),
            method=params.method,
            kappa=params.kappa,
            quantile=params.quantile,
            median=float(median),
            iqr=float(q3 - q1),
            n_scores=len(scores),
            source=source,
        )

    def normalise(self, scores: np.ndarray) -> np.ndarray:
        """``(score - median) / IQR`` (IQR floored at 1e-12): 0 is a typical normal image."""
        return (np.asarray(scores, dtype=np.float64) - self.median) / max(self.iqr, 1e-12)


@dataclasses.dataclass(frozen=True)
class BundleMeta:
    """What ``bundle.json`` records besides the model (its name and config come from the model)."""

    category: str
    strategy: str
    backbone: BackboneIdentity
    calibration: Calibration
    map_size: int
    contamination_ratio: float | None = None
    n_train_images: int | None = None
    n_injected: int | None = None
    comet: dict[str, Any] = dataclasses.field(default_factory=dict)
    optim: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    created_at: str = ""
    package_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> BundleMeta:
        """Rebuild from ``bundle.json``'s ``meta``; ``where`` names the file in errors."""
        try:
            backbone = dict(data["backbone"])
            backbone["layers"], backbone["rotations"] = tuple(backbone["layers"]), tuple(backbone["rotations"])
            fields = {**data, "backbone": BackboneIdentity(**backbone), "calibration": Calibration(**data["calibration"])}
            return cls(**fields)
        except (KeyError, TypeError, ValueError) as err:
            raise BundleError(f"{where}: 'meta' is incomplete or malformed ({type(err).__name__}: {err})") from err


class ImageScores(NamedTuple):
    """Per-image results of :meth:`Bundle.score_images`, in the order of the paths."""

    scores: np.ndarray  # (N,) raw anomaly scores
    maps: np.ndarray  # (N, map_size, map_size) anomaly maps
    decisions: np.ndarray  # (N,) bool, score >= threshold


class ImageScorer(nn.Module):
    """Backbone + detector in one module: images ``(B, 3, S, S)`` in ``[0, 1]`` -> ``(score (B,), map (B, M, M))``.

    The rotation views are built inside (``R`` views for multi-view models, the first
    one otherwise) and the features are rounded to float16, exactly as the feature
    cache the model was trained and calibrated on stores them.
    """

    def __init__(self, extractor: FeatureExtractor, model: AnomalyModel, rotations: Sequence[int], map_size: int):
        super().__init__()
        self.extractor = extractor
        self.model = model.eval()
        self.rotations = tuple(rotations) if model.multi_view else tuple(rotations)[:1]
        self.map_size = int(map_size)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.extractor(rotation_views(images, self.rotations))  # (R * B, C, h, w), view-major
        features = features.to(torch.float16).float().unflatten(0, (len(self.rotations), -1)).transpose(0, 1)
        return self.model.score(features), self.model.anomaly_map(features, (self.map_size, self.map_size))


class _Images(Dataset):
    """Resized ``uint8`` images; an unreadable one yields ``(index, None, reason)`` instead of raising."""

    def __init__(self, paths: Sequence[str], resolution: int, collect_errors: bool) -> None:
        self.paths, self.resolution, self.collect_errors = list(paths), resolution, collect_errors

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, Tensor | None, str]:
        try:
            return index, load_resized(self.paths[index], self.resolution), ""
        except ImageReadError as err:
            if not self.collect_errors:
                raise
            return index, None, err.reason


def _collate(items: list[tuple[int, Tensor | None, str]]) -> list[tuple[int, Tensor | None, str]]:
    return items


@dataclasses.dataclass
class Bundle:
    """A loaded bundle: model, backbone and metadata, ready to score images."""

    path: Path
    model: AnomalyModel
    extractor: FeatureExtractor
    meta: BundleMeta

    def scorer(self) -> ImageScorer:
        """The backbone + detector module (shares this bundle's parameters)."""
        return ImageScorer(self.extractor, self.model, self.meta.backbone.rotations, self.meta.map_size)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """``score >= threshold`` (anomalous); NaN (unscored) is ``False``."""
        return np.asarray(scores, dtype=np.float64) >= self.meta.calibration.threshold

    def score_images(
        self,
        paths: Sequence[str | Path],
        batch_size: int = 16,
        device: str = "cpu",
        progress: bool = False,
        on_unreadable: Callable[[str, str], None] | None = None,
    ) -> ImageScores:
        """Scores, anomaly maps and decisions of image files (batched, ``torch.inference_mode``).

        An unreadable image raises :class:`ImageReadError` naming it, unless ``on_unreadable``
        is given: then it is called with ``(path, reason)`` and the image gets a NaN score,
        a NaN map and decision ``False``.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        paths = [str(p) for p in paths]
        size = self.meta.map_size
        scores = np.full(len(paths), np.nan, dtype=np.float64)
        maps = np.full((len(paths), size, size), np.nan, dtype=np.float32)
        loader = DataLoader(
            _Images(paths, self.meta.backbone.resolution, on_unreadable is not None),
            batch_size=batch_size,
            collate_fn=_collate,
        )
        dev = resolve_device(device)
        scorer = self.scorer().to(dev)
        with torch.inference_mode(), tqdm(total=len(paths), unit="img", desc="scoring", disable=not progress) as bar:
            for batch in loader:
                good = [(i, image) for i, image, _ in batch if image is not None]
                for i, _, reason in batch:
                    if reason:
                        on_unreadable(paths[i], reason)  # type: ignore[misc]
                if good:
                    index = [i for i, _ in good]
                    images = torch.stack([image for _, image in good]).to(dev).float().div_(255.0)
                    batch_scores, batch_maps = scorer(images)
                    scores[index] = batch_scores.double().cpu().numpy()
                    maps[index] = batch_maps.float().cpu().numpy()
                bar.update(len(batch))
        return ImageScores(scores, maps, self.decide(scores))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path} is unreadable or not valid JSON ({err}); re-create the bundle") from err
    if not isinstance(data, dict):
        raise BundleError(f"{path} must hold a JSON object; got {type(data).__name__}")
    return data


def save_bundle(directory: str | Path, model: AnomalyModel, meta: BundleMeta) -> Path:
    """Write ``model.pt``, ``bundle.json`` and ``MODEL_CARD.md`` into ``directory``; return it.

    ``created_at`` and ``package_version`` are filled in when empty.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = dataclasses.replace(
        meta,
        created_at=meta.created_at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        package_version=meta.package_version or __version__,
    )
    save_model(model, directory / MODEL_FILE)
    document = {
        "format_version": FORMAT_VERSION,
        "model": {
            "name": model.name,
            "config": model.config(),
            "in_channels": model.in_channels,
            "multi_view": model.multi_view,
            "file": MODEL_FILE,
            "sha256": sha256_file(directory / MODEL_FILE),
        },
        "meta": meta.to_dict(),
    }
    (directory / META_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (directory / CARD_FILE).write_text(model_card(document["model"], meta), encoding="utf-8")
    logger.info("Saved %s bundle to %s", model.name, directory)
    return directory


def load_bundle(directory: str | Path, weights_path: str | None = None, device: str = "cpu") -> Bundle:
    """Load and check a bundle written by :func:`save_bundle`.

    ``weights_path`` overrides the backbone weights location recorded in ``bundle.json``
    (another machine). Raises :class:`BundleError` for a missing directory, missing or
    corrupt files, or backbone weights whose SHA-256 differs from the recorded one.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"bundle directory {str(directory)!r} does not exist; expected a folder written by save_bundle")
    for name in (META_FILE, MODEL_FILE):
        if not (directory / name).is_file():
            raise BundleError(f"bundle {str(directory)!r} has no {name}; expected {MODEL_FILE} and {META_FILE}")
    document = _read_json(directory / META_FILE)
    where = str(directory / META_FILE)
    if document.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{where}: format_version {document.get('format_version')!r}, expected {FORMAT_VERSION}")
    meta = BundleMeta.from_dict(document.get("meta") or {}, where)
    recorded = (document.get("model") or {}).get("sha256")
    actual = sha256_file(directory / MODEL_FILE)
    if recorded != actual:
        raise BundleError(
            f"{directory / MODEL_FILE} has SHA-256 {actual[:16]}..., but {META_FILE} records {str(recorded)[:16]}...: "
            "the model file was changed or is corrupt"
        )
    try:
        model = load_model(directory / MODEL_FILE).eval()
    except (ValueError, RuntimeError, KeyError, TypeError) as err:
        raise BundleError(f"{directory / MODEL_FILE} cannot be loaded ({err})") from err
    spec = meta.backbone.spec(weights_path)
    try:
        _, digest = verify_weights(spec)
    except (FileNotFoundError, RuntimeError) as err:
        raise BundleError(f"bundle {str(directory)!r}: backbone {spec.name!r} weights unusable ({err})") from err
    if digest != meta.backbone.weights_sha256:
        raise BundleError(
            f"bundle {str(directory)!r} was made with {spec.name} weights SHA-256 {meta.backbone.weights_sha256[:16]}..., "
            f"but the local weights ({spec.weights_path or 'package default'}) have {digest[:16]}...; "
            "scores would not be comparable: use the same weights file (weights_path) or re-train"
        )
    extractor = FeatureExtractor(spec)
    if extractor.out_channels != model.in_channels:
        raise BundleError(
            f"bundle {str(directory)!r}: the backbone gives {extractor.out_channels} channels, the model expects "
            f"{model.in_channels}"
        )
    dev = resolve_device(device)
    return Bundle(directory, model.to(dev), extractor.to(dev), meta)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def model_card(model_info: dict[str, Any], meta: BundleMeta) -> str:
    """Markdown model card of a bundle (``model_info`` is ``bundle.json``'s ``model`` section)."""
    cal, bb = meta.calibration, meta.backbone
    method = (
        f"Q3 + {cal.kappa:g} x IQR (Tukey fence)" if cal.method == "iqr" else f"{cal.quantile:g} quantile"
    )
    comet_on = [k for k in ("confidence_weighting", "covariance_regularization", "meta_learning") if meta.comet.get(k)]
    strategy = (
        f"CoMet (Confident Meta-Learning): {', '.join(comet_on)}" if comet_on else "baseline (plain training, no CoMet)"
    )
    contamination = (
        "not recorded"
        if meta.contamination_ratio is None
        else f"ratio r = {meta.contamination_ratio:g} (#anomalous / #clean training images)"
        + (f"; {meta.n_injected} of {meta.n_train_images} training images were defective" if meta.n_injected is not None else "")
    )
    metrics = (
        "\n".join(f"| {k} | {_fmt(v)} |" for k, v in sorted(meta.metrics.items()))
        if meta.metrics
        else "| (no evaluation results were available when the bundle was made) | |"
    )
    config = ", ".join(f"{k}={v}" for k, v in sorted(model_info["config"].items()))
    views = bb.rotations if model_info.get("multi_view", True) else bb.rotations[:1]
    return f"""# Model card: {model_info['name']} for `{meta.category}` ({meta.strategy})

Generated by comet-pipeline {meta.package_version} on {meta.created_at}.

## Intended use
Image-level anomaly detection and coarse localisation for industrial inspection images of the
category **{meta.category}**, seen under the same camera set-up as the training data. It flags images
that differ from the bulk of the training images; it does not classify defect types.

## Model
- detector: `{model_info['name']}` ({config}); {model_info['in_channels']} input channels
- backbone (frozen, ImageNet): `{bb.name}`, layers {list(bb.layers)}, input {bb.resolution} x {bb.resolution} px,
  weights SHA-256 `{bb.weights_sha256}`
- views: rotations {list(views)} degrees (scores averaged over views for multi-view models)

## Data and contamination
- training data: the uncurated training split of `{meta.category}` ({meta.n_train_images if meta.n_train_images is not None else 'unknown number of'} images), no labels used
- contamination: {contamination}

## Training strategy
{strategy}. CoMet settings: {json.dumps(meta.comet, sort_keys=True)}.
Optimisation: {json.dumps(meta.optim, sort_keys=True)}.

## Decision threshold
score >= **{cal.threshold:.6g}** is *anomalous*. Set label-free with {method} of {cal.source}.
Normalised score = (score - {cal.median:.6g}) / {cal.iqr:.6g} (median and IQR of the same scores);
the threshold is {cal.normalise(np.array([cal.threshold]))[0]:.3g} in normalised units.

## Evaluation metrics (test split, threshold above)
| metric | value |
| --- | --- |
{metrics}

## Limits
- Scores are relative to this training set: a new camera, lighting, resolution or product variant needs re-training.
- The threshold assumes the held-out training images are mostly normal; contamination above the training ratio
  shifts it upwards (fewer detections).
- Anomaly maps are coarse ({meta.map_size} x {meta.map_size}) and meant for visual inspection, not measurement.
- The backbone weights must match the SHA-256 above; `load_bundle` refuses other weights.

## How to score
```bash
comet-pipeline score path/to/images --model path/to/this/bundle --output scores_out
comet-pipeline export --model path/to/this/bundle --format onnx --output model.onnx
```
```python
from comet_pipeline.bundle import load_bundle
scores, maps, decisions = load_bundle("path/to/this/bundle").score_images(["image.png"])
```
"""
