"""contamination.contaminate: counts, determinism, overlap, capping, errors."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from comet_pipeline.data.contamination import SUMMARY_COLUMNS, contaminate
from comet_pipeline.data.schema import make_table


def _rows(category: str, split: str, defect: str, n: int) -> list[dict]:
    return [
        {
            "sample_id": f"{category}/{split}/{defect}/{i:03d}",
            "path": f"/data/{category}/{split}/{defect}/{i:03d}.png",
            "category": category,
            "split": split,
            "label": int(defect != "good"),
            "defect_type": defect,
            "mask_path": "" if defect == "good" else f"/data/{category}/ground_truth/{defect}/{i:03d}_mask.png",
        }
        for i in range(n)
    ]


@pytest.fixture
def table() -> pd.DataFrame:
    """``big``: 50 clean train, 10 good + 30 defective test; ``small``: 20 clean train, 3 defective test."""
    rows = _rows("big", "train", "good", 50) + _rows("big", "test", "good", 10)
    rows += _rows("big", "test", "crack", 15) + _rows("big", "test", "dent", 15)
    rows += _rows("small", "train", "good", 20) + _rows("small", "test", "hole", 3)
    return make_table(rows)


def _injected(result: pd.DataFrame, category: str = "big") -> list[str]:
    return sorted(result.loc[result["injected"] & (result["category"] == category), "path"])


@pytest.mark.parametrize(("ratio", "expected"), [(0.0, 0), (0.02, 1), (0.1, 5), (0.5, 25)])
def test_exact_counts(table: pd.DataFrame, ratio: float, expected: int) -> None:
    result, summary = contaminate(table, ratio, seed=0)
    big = result[result["category"] == "big"]
    assert len(result) == len(table)
    assert (big["split"] == "train").sum() == 50 + expected
    injected = big[big["injected"]]
    assert len(injected) == expected and (injected["split"] == "train").all() and (injected["label"] == 1).all()
    row = summary.set_index("category").loc["big"]
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert (row["n_clean_train"], row["n_requested"], row["n_injected"]) == (50, expected, expected)
    assert row["actual_ratio"] == pytest.approx(expected / 50) and not row["capped"]


def test_ratio_zero_returns_table_unchanged(table: pd.DataFrame) -> None:
    result, _ = contaminate(table, 0)
    pd.testing.assert_frame_equal(result, table)


def test_deterministic_by_seed(table: pd.DataFrame) -> None:
    first = _injected(contaminate(table, 0.2, seed=3)[0])
    assert first == _injected(contaminate(table, 0.2, seed=3)[0])
    assert first != _injected(contaminate(table, 0.2, seed=4)[0])


def test_no_overlap_removes_injected_from_test(table: pd.DataFrame) -> None:
    result, _ = contaminate(table, 0.5)
    injected = set(result.loc[result["injected"], "path"])
    assert injected and injected.isdisjoint(result.loc[result["split"] == "test", "path"])
    assert result["sample_id"].is_unique


def test_overlap_keeps_test_rows(table: pd.DataFrame) -> None:
    result, _ = contaminate(table, 0.5, overlap=True)
    copies = result[result["injected"]]
    assert len(result) == len(table) + len(copies)
    assert copies["sample_id"].str.endswith("@train").all()
    pd.testing.assert_frame_equal(result.iloc[: len(table)], table)  # test rows untouched
    test_paths = set(result.loc[result["split"] == "test", "path"])
    assert set(copies["path"]) <= test_paths


def test_cap_warns_with_actual_ratio(table: pd.DataFrame, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="comet_pipeline.data.contamination"):
        result, summary = contaminate(table, 0.5)
    row = summary.set_index("category").loc["small"]
    assert (row["n_requested"], row["n_injected"], row["capped"]) == (10, 3, True)
    assert row["actual_ratio"] == pytest.approx(0.15)
    assert len(_injected(result, "small")) == 3
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "'small'" in message and "requests 10" in message and "only 3" in message and "0.15" in message


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan"), "lots"])
def test_ratio_out_of_range(table: pd.DataFrame, ratio) -> None:
    with pytest.raises(ValueError, match=r"ratio.*\[0, 1\]|ratio.*0 <= ratio <= 1"):
        contaminate(table, ratio)


def test_category_without_clean_train(table: pd.DataFrame) -> None:
    only_test = table[~((table["category"] == "small") & (table["split"] == "train"))]
    with pytest.raises(ValueError, match="'small'"):
        contaminate(only_test, 0.1)
