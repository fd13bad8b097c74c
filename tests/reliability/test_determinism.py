"""Same seed, same metrics (CPU): through experiment.train_cell + evaluate_cell, as the pipelines run a cell."""

from __future__ import annotations

import pandas as pd
import pytest

from comet_pipeline.config import EvaluationParams
from comet_pipeline.experiment import ModelSetup, evaluate_cell, train_cell, training_tables
from comet_pipeline.training.trainer import CoMetConfig, TrainConfig

from reliability_helpers import tiny_category

COMET = CoMetConfig(
    confidence_weighting=True, covariance_regularization=True, meta_learning=True, warmup_epochs=1, window=3
)
SETUPS = {
    "flow": ModelSetup("flow", {"n_blocks": 2, "hidden": 16, "grid": 2}, TrainConfig(epochs=3, batch_size=8, device="cpu")),
    "simplenet": ModelSetup("simplenet", {"hidden": 16}, TrainConfig(epochs=3, batch_size=8, device="cpu")),
}


def _cell(name: str, seed: int | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    data = tiny_category()
    result = train_cell(data, SETUPS[name], COMET, seed=seed)
    history, _, scores = training_tables(f"cat__{name}", result)
    metrics, per_image = evaluate_cell(result.model, data, scores, EvaluationParams(map_size=8))
    return metrics, per_image, history.drop(columns="seconds")


@pytest.mark.parametrize("name", list(SETUPS))
def test_same_seed_gives_identical_metrics(name: str) -> None:
    first, second = _cell(name), _cell(name)
    assert pd.Series(first[0]).equals(pd.Series(second[0]))  # exact, not approximate (NaN == NaN)
    pd.testing.assert_frame_equal(first[1], second[1])
    pd.testing.assert_frame_equal(first[2], second[2])
    other = _cell(name, seed=1)
    assert not other[1]["score"].equals(first[1]["score"])  # the seed is what fixes the result
