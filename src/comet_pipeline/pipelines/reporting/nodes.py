"""Nodes of reporting: turn evaluation outputs into tables, figures and one HTML page."""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from comet_pipeline.config import EvaluationParams, FeatureParams, parse
from comet_pipeline.data.images import load_rgb
from comet_pipeline.experiment import load_category, model_views, test_masks
from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.reporting.figures import overlay_grid, thumbnail_grid, training_curves, weight_histogram
from comet_pipeline.reporting.html import html_report
from comet_pipeline.reporting.tables import flat_metrics, markdown_table, summary_table, to_markdown
from comet_pipeline.training.trainer import anomaly_maps

logger = logging.getLogger(__name__)


def summarise(results: pd.DataFrame) -> tuple[pd.DataFrame, str, dict[str, float]]:
    """Per-category and mean table (baseline vs CoMet), its Markdown, and flat metrics for DVC."""
    summary = summary_table(results)
    return summary, to_markdown(summary), flat_metrics(summary)


def _curation_figures(manifest: pd.DataFrame, train_scores: pd.DataFrame, n_lowest: int = 12) -> dict[str, Figure]:
    """Histogram of CoMet weights (clean vs injected) and the lowest-weight training images (paper Fig. 2)."""
    rows = train_scores.merge(manifest[["sample_id", "path", "injected", "defect_type"]], on="sample_id")
    figures = {"curation_weights": weight_histogram(rows["weight"], rows["injected"])}
    lowest = rows.sort_values("weight").head(n_lowest)
    titles = [
        f"w={r.weight:.2f} ({'injected: ' + r.defect_type if r.injected else 'clean'})" for r in lowest.itertuples()
    ]
    figures["curation_lowest_weights"] = thumbnail_grid([load_rgb(p) for p in lowest["path"]], titles)
    return figures


def _overlay_figures(
    manifest: pd.DataFrame,
    models: dict[str, AnomalyModel],
    feature_params: FeatureParams,
    params: EvaluationParams,
) -> dict[str, Figure]:
    """Anomaly-map overlays for the first few defective and one nominal test image per model."""
    figures, loaded = {}, {}
    for key, model in sorted(models.items()):
        category = key.split("__")[0]
        if category not in loaded:  # one feature load per category, shared by its models
            loaded[category] = load_category(manifest, category, feature_params)
        data = loaded[category]
        test = data.test
        chosen = pd.concat([test[test["label"] == 1].head(params.overlays_per_category - 1), test[test["label"] == 0].head(1)])
        if chosen.empty:
            continue
        index = chosen.index.to_numpy()
        size = (params.map_size, params.map_size)
        maps = anomaly_maps(model, model_views(model, data.test_features[index]), size)
        masks = test_masks(chosen, params.map_size)
        images = [np.asarray(_resize(load_rgb(p), params.map_size)) for p in chosen["path"]]
        titles = [f"{r.defect_type}" for r in chosen.itertuples()]
        figures[f"overlay_{key}"] = overlay_grid(images, list(maps), list(masks) if masks is not None else None, titles)
    return figures


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def report_figures(
    manifest: pd.DataFrame,
    comet_models: dict[str, AnomalyModel],
    comet_train_scores: pd.DataFrame,
    baseline_history: pd.DataFrame,
    comet_history: pd.DataFrame,
    features: dict[str, Any],
    evaluation: dict[str, Any],
) -> tuple[dict[str, Figure], dict[str, bytes]]:
    """Every report figure, as Figures (saved to PNG by the catalog) and as PNG bytes (for the HTML)."""
    feature_params = parse(FeatureParams, features, "features")
    params = parse(EvaluationParams, evaluation, "evaluation")
    figures = _curation_figures(manifest, comet_train_scores)
    for strategy, history in (("baseline", baseline_history), ("comet", comet_history)):
        for key, runs in history.groupby("key"):
            figures[f"training_{strategy}_{key}"] = training_curves(runs)
    figures.update(_overlay_figures(manifest, comet_models, feature_params, params))
    pngs = {name: _png(figure) for name, figure in figures.items()}
    return {f"{name}.png": figure for name, figure in figures.items()}, pngs


def write_html(
    summary_markdown: str,
    contamination_summary: pd.DataFrame,
    ingestion_report: pd.DataFrame,
    pngs: dict[str, bytes],
) -> str:
    """One self-contained HTML page with the tables and every figure."""
    problems = (
        "No problems." if ingestion_report.empty else f"{len(ingestion_report)} files could not be used; see ingestion_report.csv."
    )
    sections = [
        ("Results: baseline vs CoMet", summary_markdown),
        ("Contamination of the training set", markdown_table(
            list(contamination_summary.columns),
            [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in contamination_summary.itertuples(index=False)],
        )),
        ("Ingestion", problems),
    ]
    return html_report("comet-pipeline report", sections, pngs)
