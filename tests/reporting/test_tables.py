"""Summary tables, Markdown, flat DVC metrics, the paper's numbers and the HTML report."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from comet_pipeline.reporting.html import html_report
from comet_pipeline.reporting.tables import (
    DEFAULT_METRICS,
    PAPER_NOTE,
    PAPER_RESULTS,
    flat_metrics,
    summary_table,
    to_markdown,
)

METHODS = ["DifferNet", "CoMet-NF", "SimpleNet", "CoMet-SN"]


@pytest.fixture
def results() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"category": c, "model": m, "strategy": s, "ratio": 0.1, "seed": seed}
        | {metric: rng.uniform(0.6, 1.0) for metric in DEFAULT_METRICS}
        for c, m, s, seed in itertools.product(["screw", "bottle"], ["simplenet", "flow"], ["comet", "baseline"], [0, 1, 2])
    ]
    frame = pd.DataFrame(rows)
    frame["p_auroc"] = np.nan  # e.g. no masks
    return frame


def test_summary_rows_columns_and_values(results):
    summary = summary_table(results)
    assert list(summary["category"]) == ["bottle"] * 4 + ["screw"] * 4 + ["mean"] * 4
    assert list(summary["method"]) == METHODS * 3
    assert {f"{m}_{s}" for m in DEFAULT_METRICS for s in ("mean", "std")} <= set(summary.columns)
    mean_row = summary.query("category == 'mean' and method == 'CoMet-NF'").iloc[0]
    per_seed = results.query("model == 'flow' and strategy == 'comet'").groupby("seed")["i_auroc"].mean()
    assert mean_row["i_auroc_mean"] == pytest.approx(per_seed.mean())
    assert mean_row["i_auroc_std"] == pytest.approx(per_seed.std())
    assert summary["p_auroc_mean"].isna().all()


def test_summary_rejects_several_ratios(results):
    with pytest.raises(ValueError, match="one contamination ratio"):
        summary_table(pd.concat([results, results.assign(ratio=0.0)]))
    with pytest.raises(ValueError, match="lack columns"):
        summary_table(results.drop(columns="aupro"))


def test_markdown(results):
    summary = summary_table(results)
    text = to_markdown(summary)
    assert PAPER_NOTE in text and "±" in text
    assert "| category | DifferNet | CoMet-NF | SimpleNet | CoMet-SN |" in text
    row = summary.query("category == 'bottle' and method == 'DifferNet'").iloc[0]
    assert f"{100 * row['f1_mean']:.1f} ± {100 * row['f1_std']:.1f}" in text
    assert "| CoMet-NF | 99.2 | 83.5 | 94.9 |" in text  # the paper's I-AUROC row
    assert "n/a" in text  # p_auroc without masks


def test_flat_metrics_equal_summary(results):
    summary = summary_table(results)
    flat = flat_metrics(summary)
    row = summary.query("category == 'mean' and method == 'CoMet-SN'").iloc[0]
    assert flat["mean/CoMet-SN/i_auroc"] == row["i_auroc_mean"]
    assert flat["mean/CoMet-SN/i_auroc_std"] == row["i_auroc_std"]
    assert not any("p_auroc" in key for key in flat)  # NaN left out
    assert len(flat) == len(summary) * (len(DEFAULT_METRICS) - 1) * 2


def test_paper_results():
    assert len(PAPER_RESULTS) == 4 * 3 * 4
    value = PAPER_RESULTS.query("method == 'SimpleNet' and dataset == 'KSDD2' and metric == 'recall'")["value"]
    assert value.item() == pytest.approx(0.700)


def test_html_report_is_self_contained(results, tmp_path):
    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    fig.savefig(tmp_path / "plot.png")
    page = html_report(
        "Report <synthetic>",
        [("Results", to_markdown(summary_table(results)))],
        {"sweep": tmp_path / "plot.png", "bytes": (tmp_path / "plot.png").read_bytes()},
    )
    assert page.startswith("<!DOCTYPE html>") and "Report &lt;synthetic&gt;" in page
    assert page.count('src="data:image/png;base64,') == 2
    assert not re.search(r"(src|href)=\"(?!data:)", page) and "http" not in page
    assert "<table>" in page and "<th>CoMet-NF</th>" in page and "±" in page and "<blockquote>" in page
    with pytest.raises(ValueError, match="not a PNG"):
        html_report("x", [], {"bad": b"GIF89a"})
