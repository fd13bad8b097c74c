"""Report figures, built on ``matplotlib.figure.Figure`` (no pyplot global state).

Save with ``fig.savefig(path)``; a Figure made this way needs no backend selection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from comet_pipeline.evaluation.metrics import curation_auroc
from comet_pipeline.reporting.tables import METHOD_NAMES, method_name, seed_statistics

#: model -> (colour, marker); baseline dashed, CoMet solid, as in the paper's Fig. 5.
_MODEL_STYLE = {"flow": ("tab:blue", "o"), "simplenet": ("tab:orange", "s")}
_STRATEGY_LINE = {"baseline": "--", "comet": "-"}


def sweep_plot(results: pd.DataFrame) -> Figure:
    """I-AUROC (%) vs contamination ratio (%), one line per (model, strategy).

    Each point is the mean over seeds of the per-seed mean over categories; error
    bars are the std over seeds.
    """
    stats = seed_statistics(results, ["i_auroc"], ["model", "strategy", "ratio"])
    order = {pair: rank for rank, pair in enumerate(METHOD_NAMES)}
    pairs = sorted(set(zip(stats["model"], stats["strategy"])), key=lambda p: (order.get(p, len(order)), p))
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.add_subplot()
    for index, (model, strategy) in enumerate(pairs):
        line = stats[(stats["model"] == model) & (stats["strategy"] == strategy)].sort_values("ratio")
        colour, marker = _MODEL_STYLE.get(model, (f"C{index + 2}", "^"))
        ax.errorbar(
            100 * line["ratio"],
            100 * line["i_auroc_mean"],
            yerr=100 * line["i_auroc_std"].fillna(0.0),
            label=method_name(model, strategy),
            color=colour,
            marker=marker,
            linestyle=_STRATEGY_LINE.get(strategy, ":"),
            capsize=3,
        )
    ax.set_xlabel("contamination ratio (%)")
    ax.set_ylabel("I-AUROC (%)")
    ax.set_xlim(-0.5, max(10.0, 100 * float(stats["ratio"].max())) + 0.5)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def weight_histogram(weights: ArrayLike, injected: ArrayLike) -> Figure:
    """Histogram of the CoMet confidence weights of clean vs injected training images;
    the title gives the curation AUROC of ``1 - w``."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    is_injected = np.asarray(injected).ravel().astype(bool)
    if w.shape != is_injected.shape:
        raise ValueError(f"weights have shape {w.shape} but injected flags have shape {is_injected.shape}")
    bins = np.linspace(min(0.0, w.min()), max(1.0, w.max()), 21)
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(w[~is_injected], bins=bins, alpha=0.6, label=f"clean ({(~is_injected).sum()})")
    ax.hist(w[is_injected], bins=bins, alpha=0.6, label=f"injected ({is_injected.sum()})")
    ax.set_xlabel("confidence weight w")
    ax.set_ylabel("training images")
    ax.set_title(f"CoMet weights (curation AUROC = {curation_auroc(is_injected, w):.3f})")
    ax.legend()
    return fig


def _grid(n: int, ncols: int, cell: float = 2.2) -> tuple[Figure, list]:
    """A figure with ``n`` image axes (ticks off) on ``ceil(n / ncols)`` rows."""
    if n == 0:
        raise ValueError("a figure grid needs at least one image")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(cell * ncols, cell * nrows + 0.3), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    for ax in axes[:n]:
        ax.set_axis_off()
    return fig, axes[:n]


def _check_lengths(**sequences: Sequence) -> None:
    lengths = {name: len(values) for name, values in sequences.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"lengths differ: {lengths}")


def thumbnail_grid(images: Sequence[np.ndarray], titles: Sequence[str], ncols: int = 6) -> Figure:
    """HxWx3 uint8 images on a grid with one title each (e.g. ``"w=0.42 (injected: scratch)"``)."""
    _check_lengths(images=images, titles=titles)
    fig, axes = _grid(len(images), ncols)
    for ax, image, title in zip(axes, images, titles):
        ax.imshow(image)
        ax.set_title(title, fontsize=8)
    return fig


def overlay_grid(
    images: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None] | None,
    titles: Sequence[str],
) -> Figure:
    """One row per image: image | anomaly map over the image (jet, alpha 0.5) | ground-truth contour.

    The third column exists when ``masks`` is given; an entry ``None`` leaves its panel
    empty. All maps share one colour scale; maps and masks are stretched over the image.
    """
    masks = list(masks) if masks is not None else None
    _check_lengths(images=images, maps=maps, titles=titles, **({"masks": masks} if masks is not None else {}))
    ncols = 2 if masks is None else 3
    fig, axes = _grid(len(images) * ncols, ncols)
    vmin = min(float(np.min(m)) for m in maps)
    vmax = max(float(np.max(m)) for m in maps)
    for row, (image, anomaly_map, title) in enumerate(zip(images, maps, titles)):
        height, width = image.shape[:2]
        extent = (-0.5, width - 0.5, height - 0.5, -0.5)
        image_ax, map_ax, *gt_axes = axes[row * ncols : (row + 1) * ncols]
        image_ax.imshow(image)
        image_ax.set_title(title, fontsize=8)
        map_ax.imshow(image)
        map_ax.imshow(anomaly_map, cmap="jet", alpha=0.5, vmin=vmin, vmax=vmax, extent=extent)
        map_ax.set_title("anomaly map", fontsize=8)
        if gt_axes:
            gt_ax, mask = gt_axes[0], masks[row]
            gt_ax.imshow(image)
            if mask is None or not np.any(mask):
                gt_ax.set_title("no ground-truth defect", fontsize=8)
            else:
                gt_ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="lime", extent=extent, origin="upper")
                gt_ax.set_title("ground truth", fontsize=8)
    return fig


def training_curves(history: pd.DataFrame) -> Figure:
    """Per-epoch losses (every column ending in ``loss``, e.g. ``train_loss``, ``val_loss``)
    and, in a second panel, ``lambda`` when present; x is the ``epoch`` column or the row index."""
    loss_columns = [c for c in history.columns if str(c).endswith("loss")]
    if not loss_columns:
        raise ValueError(f"history has no loss column (name ending in 'loss'); got {list(history.columns)}")
    epochs = history["epoch"] if "epoch" in history.columns else history.index
    has_lambda = "lambda" in history.columns
    fig = Figure(figsize=(5 * (1 + has_lambda), 3.5), layout="constrained")
    axes = fig.subplots(1, 1 + has_lambda, squeeze=False).ravel()
    for column in loss_columns:
        axes[0].plot(epochs, history[column], marker=".", label=column)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    if has_lambda:
        axes[1].plot(epochs, history["lambda"], marker=".", color="tab:green")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("λ")
    return fig
