"""Result tables: seed statistics, Markdown rendering, the paper's numbers and flat DVC metrics.

Long-form results have one row per (category, model, strategy, ratio, seed) and
one column per metric (fractions in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: (model, strategy) -> the method's name in the paper.
METHOD_NAMES: dict[tuple[str, str], str] = {
    ("flow", "baseline"): "DifferNet",
    ("flow", "comet"): "CoMet-NF",
    ("simplenet", "baseline"): "SimpleNet",
    ("simplenet", "comet"): "CoMet-SN",
}
METRIC_NAMES: dict[str, str] = {
    "i_auroc": "I-AUROC",
    "p_auroc": "P-AUROC",
    "aupro": "AUPRO",
    "f1_max": "F1-max",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
}
DEFAULT_METRICS: tuple[str, ...] = ("i_auroc", "p_auroc", "aupro", "f1_max", "precision", "recall", "f1")
MEAN_ROW = "mean"
PAPER_NOTE = (
    "Note: the paper's numbers are for MVTec AD, VIADUCT and KSDD2, NOT for the built-in "
    "synthetic data; they are not directly comparable with the results above."
)

_PAPER_DATASETS = ("MVTec AD", "VIADUCT", "KSDD2")
_PAPER_METRICS = ("i_auroc", "precision", "recall", "f1")
# method -> per dataset (I-AUROC, precision, recall, F1) in percent, as printed in the paper.
_PAPER_PERCENT: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "DifferNet": ((94.9, 95.6, 76.4, 84.9), (76.2, 79.1, 70.3, 74.4), (91.5, 90.9, 87.5, 89.2)),
    "CoMet-NF": ((99.2, 92.5, 93.4, 92.9), (83.5, 77.1, 90.8, 83.4), (94.9, 87.4, 94.3, 90.7)),
    "SimpleNet": ((99.6, 98.1, 98.9, 98.5), (87.1, 84.1, 93.6, 88.6), (91.7, 96.2, 70.0, 81.0)),
    "CoMet-SN": ((99.7, 97.8, 99.8, 98.8), (90.3, 83.4, 97.5, 89.9), (92.2, 96.0, 70.3, 81.2)),
}
#: The paper's reported results (long form: method, dataset, metric, value as a fraction).
PAPER_RESULTS: pd.DataFrame = pd.DataFrame(
    [
        {"method": method, "dataset": dataset, "metric": metric, "value": round(percent / 100, 4)}
        for method, per_dataset in _PAPER_PERCENT.items()
        for dataset, values in zip(_PAPER_DATASETS, per_dataset, strict=True)
        for metric, percent in zip(_PAPER_METRICS, values, strict=True)
    ]
)


def method_name(model: str, strategy: str) -> str:
    """The paper's name of a (model, strategy) pair, e.g. ``("flow", "comet") -> "CoMet-NF"``."""
    return METHOD_NAMES.get((model, strategy), f"{model} ({strategy})")


def _require_columns(results: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in results.columns]
    if missing:
        raise ValueError(f"results lack columns {missing}; got {list(results.columns)}")


def seed_statistics(results: pd.DataFrame, metrics: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
    """Mean and std (ddof=1, NaN for one seed) over seeds of the per-seed mean over the other rows.

    For each group of ``keys`` and each seed, the metric is first averaged over the
    remaining rows (e.g. categories); columns ``<metric>_mean`` and ``<metric>_std``.
    """
    keys = list(keys)
    metrics = list(metrics)
    _require_columns(results, [*keys, "seed", *metrics])
    per_seed = results.groupby([*keys, "seed"], sort=False)[metrics].mean()
    stats = per_seed.groupby(level=keys, sort=False).agg(["mean", "std"])
    stats.columns = [f"{metric}_{stat}" for metric, stat in stats.columns]
    return stats.reset_index()


def _method_order(summary: pd.DataFrame) -> list[str]:
    known = [name for name in METHOD_NAMES.values() if name in set(summary["method"])]
    return known + sorted(set(summary["method"]) - set(known))


def summary_table(results: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS) -> pd.DataFrame:
    """Per category (plus a ``"mean"`` row over categories) and method: mean and std over seeds.

    Columns: ``category, model, strategy, method`` and ``<metric>_mean``,
    ``<metric>_std`` for each metric. The ``"mean"`` row averages the categories
    within each seed first. ``results`` must hold a single contamination ratio.
    """
    _require_columns(results, ["category", "model", "strategy", "ratio", "seed", *metrics])
    ratios = sorted(results["ratio"].unique())
    if len(ratios) != 1:
        raise ValueError(f"summary_table needs results of one contamination ratio; got ratios {ratios}")
    per_category = seed_statistics(results, metrics, ["category", "model", "strategy"])
    overall = seed_statistics(results, metrics, ["model", "strategy"]).assign(category=MEAN_ROW)
    summary = pd.concat([per_category, overall], ignore_index=True)
    summary.insert(3, "method", [method_name(m, s) for m, s in zip(summary["model"], summary["strategy"])])
    categories = [*sorted(set(per_category["category"])), MEAN_ROW]
    summary["category"] = pd.Categorical(summary["category"], categories=categories, ordered=True)
    summary["method"] = pd.Categorical(summary["method"], categories=_method_order(summary), ordered=True)
    summary = summary.sort_values(["category", "method"]).reset_index(drop=True)
    summary["category"] = summary["category"].astype(str)
    summary["method"] = summary["method"].astype(str)
    return summary


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (first column left-aligned, others right-aligned)."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join([":---", *["---:"] * (len(header) - 1)]) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def _percent_cell(mean: float, std: float) -> str:
    """``"93.1 ± 1.2"`` in percent; the mean alone without a std (one seed), ``"n/a"`` without a mean."""
    if np.isnan(mean):
        return "n/a"
    if np.isnan(std):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _paper_markdown() -> str:
    """The paper's I-AUROC table and its Table 1 (precision / recall / F1), in percent."""
    wide = PAPER_RESULTS.pivot(index="method", columns=["dataset", "metric"], values="value")
    wide = wide.loc[list(_PAPER_PERCENT)]
    tables = []
    for metrics in (("i_auroc",), ("precision", "recall", "f1")):
        columns = [(d, m) for d in _PAPER_DATASETS for m in metrics]
        header = ["method", *(f"{d} {METRIC_NAMES[m]}" for d, m in columns)]
        rows = [[method, *(f"{100 * wide.loc[method, c]:.1f}" for c in columns)] for method in wide.index]
        tables.append(markdown_table(header, rows))
    return "\n\n".join(tables)


def to_markdown(summary: pd.DataFrame) -> str:
    """Markdown report: one table per metric (rows: categories, cells: "mean ± std" in percent,
    baseline and CoMet side by side per model), then the paper's tables and a note on comparability."""
    methods = _method_order(summary)
    metrics = [c.removesuffix("_mean") for c in summary.columns if c.endswith("_mean")]
    categories = list(dict.fromkeys(summary["category"]))
    indexed = summary.set_index(["category", "method"])
    parts = []
    for metric in metrics:
        rows = []
        for category in categories:
            cells = []
            for method in methods:
                if (category, method) in indexed.index:
                    row = indexed.loc[(category, method)]
                    cells.append(_percent_cell(row[f"{metric}_mean"], row[f"{metric}_std"]))
                else:
                    cells.append("n/a")
            rows.append([category, *cells])
        parts.append(f"### {METRIC_NAMES.get(metric, metric)} (%)\n\n" + markdown_table(["category", *methods], rows))
    parts.append("### Paper results (reported, %)\n\n" + _paper_markdown())
    parts.append(f"> {PAPER_NOTE}")
    return "\n\n".join(parts) + "\n"


def flat_metrics(summary: pd.DataFrame) -> dict[str, float]:
    """Flat keys for DVC ``metrics.json``: ``"<category>/<method>/<metric>"`` (mean) and
    ``"<category>/<method>/<metric>_std"``; NaN values (not valid JSON) are left out."""
    flat = {}
    stat_columns = [c for c in summary.columns if c.endswith(("_mean", "_std"))]
    for record in summary.to_dict("records"):
        for column in stat_columns:
            value = float(record[column])
            if not np.isnan(value):
                key = column.removesuffix("_mean")
                flat[f"{record['category']}/{record['method']}/{key}"] = value
    return flat


def sweep_table(results: pd.DataFrame, metric: str = "i_auroc") -> pd.DataFrame:
    """Noise sweep: per ratio and method, ``metric`` averaged over categories per seed, then mean/std over seeds."""
    stats = seed_statistics(results, [metric], ["model", "strategy", "ratio"])
    stats.insert(2, "method", [method_name(m, s) for m, s in zip(stats["model"], stats["strategy"])])
    return stats.sort_values(["ratio", "model", "strategy"]).reset_index(drop=True)


def sweep_markdown(table: pd.DataFrame, metric: str = "i_auroc") -> str:
    """Markdown of :func:`sweep_table`: one row per contamination ratio, one column per method."""
    methods = _method_order(table)
    indexed = table.set_index(["ratio", "method"])
    rows = []
    for ratio in sorted(table["ratio"].unique()):
        cells = [
            _percent_cell(indexed.loc[(ratio, m), f"{metric}_mean"], indexed.loc[(ratio, m), f"{metric}_std"])
            if (ratio, m) in indexed.index
            else "n/a"
            for m in methods
        ]
        rows.append([f"{100 * ratio:.0f} %", *cells])
    title = f"### {METRIC_NAMES.get(metric, metric)} (%) vs contamination ratio (mean over categories, ± std over seeds)"
    return f"{title}\n\n{markdown_table(['ratio', *methods], rows)}\n"
