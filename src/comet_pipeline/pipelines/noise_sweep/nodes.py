"""Nodes of noise_sweep."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from comet_pipeline.config import ContaminationParams, EvaluationParams, FeatureParams, parse
from comet_pipeline.experiment import parse_model_setups
from comet_pipeline.reporting.figures import sweep_plot
from comet_pipeline.reporting.tables import sweep_markdown, sweep_table
from comet_pipeline.sweep import SweepParams, run_sweep
from comet_pipeline.training.trainer import CoMetConfig


def sweep(
    samples: pd.DataFrame,
    noise_sweep: dict[str, Any],
    train: dict[str, Any],
    comet: dict[str, Any],
    features: dict[str, Any],
    evaluation: dict[str, Any],
    contamination: dict[str, Any],
) -> pd.DataFrame:
    """Run or resume the sweep grid; one row of metrics per cell."""
    return run_sweep(
        samples,
        parse(SweepParams, noise_sweep, "noise_sweep"),
        parse_model_setups(train),
        parse(CoMetConfig, comet, "comet"),
        parse(FeatureParams, features, "features"),
        parse(EvaluationParams, evaluation, "evaluation"),
        overlap=parse(ContaminationParams, contamination, "contamination").overlap,
    )


def sweep_outputs(results: pd.DataFrame) -> tuple[Figure, pd.DataFrame, str]:
    """The sweep plot, the per-ratio table (mean ± std over seeds) and its Markdown."""
    table = sweep_table(results)
    return sweep_plot(results), table, sweep_markdown(table)
