"""Figures: right number of lines/axes, and they save to non-empty PNGs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from comet_pipeline.reporting.figures import (
    overlay_grid,
    sweep_plot,
    thumbnail_grid,
    training_curves,
    weight_histogram,
)


def _saved(fig: Figure, path: Path) -> int:
    fig.savefig(path, dpi=40)
    return path.stat().st_size


@pytest.fixture
def sweep_results() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"category": c, "model": m, "strategy": s, "ratio": r, "seed": seed, "i_auroc": rng.uniform(0.7, 1.0)}
        for c, m, s, r, seed in itertools.product(
            ["a", "b"], ["flow", "simplenet"], ["baseline", "comet"], [0.0, 0.05, 0.1], [0, 1]
        )
    ]
    return pd.DataFrame(rows)


def test_sweep_plot(sweep_results, tmp_path):
    fig = sweep_plot(sweep_results)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["DifferNet", "CoMet-NF", "SimpleNet", "CoMet-SN"]
    assert len(ax.lines) >= 4 and len(ax.containers) == 4  # one errorbar container per method
    first = ax.containers[1].lines[0]  # CoMet-NF data line
    x, y = first.get_data()
    per_seed = sweep_results.query("model == 'flow' and strategy == 'comet'").groupby(["ratio", "seed"])["i_auroc"]
    assert list(x) == [0.0, 5.0, 10.0]
    assert y == pytest.approx(100 * per_seed.mean().groupby("ratio").mean().to_numpy())
    assert _saved(fig, tmp_path / "sweep.png") > 0


def test_weight_histogram(tmp_path):
    weights = np.array([1.0, 0.9, 0.95, 0.2, 0.3])
    fig = weight_histogram(weights, [False, False, False, True, True])
    assert "curation AUROC = 1.000" in fig.axes[0].get_title()
    assert _saved(fig, tmp_path / "weights.png") > 0


def test_thumbnail_grid(tmp_path):
    images = [np.full((8, 8, 3), 40 * i, dtype=np.uint8) for i in range(7)]
    titles = [f"w={0.1 * i:.2f} (injected: scratch)" for i in range(7)]
    fig = thumbnail_grid(images, titles, ncols=3)
    assert len(fig.axes) == 7
    assert fig.axes[0].get_title() == titles[0]
    assert _saved(fig, tmp_path / "thumbs.png") > 0
    with pytest.raises(ValueError, match="lengths differ"):
        thumbnail_grid(images, titles[:2])


def test_overlay_grid(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(2)]
    maps = [rng.random((8, 8)) for _ in range(2)]
    mask = np.zeros((16, 16), dtype=bool)
    mask[4:9, 4:9] = True
    fig = overlay_grid(images, maps, [mask, None], ["bad", "good"])
    assert len(fig.axes) == 6
    assert len(fig.axes[2].collections) >= 1  # the contour
    assert _saved(fig, tmp_path / "overlay.png") > 0
    assert len(overlay_grid(images, maps, None, ["bad", "good"]).axes) == 4


def test_training_curves(tmp_path):
    history = pd.DataFrame(
        {"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.5], "val_loss": [3.1, 2.2, 1.9], "lambda": [0.1, 0.2, 0.3]}
    )
    fig = training_curves(history)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1
    assert _saved(fig, tmp_path / "curves.png") > 0
    assert len(training_curves(history.drop(columns="lambda")).axes) == 1
