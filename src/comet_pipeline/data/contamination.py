"""Contamination: move defective test images into the training set.

The returned sample table is itself the manifest of what was moved: injected
rows have ``split="train"`` and ``injected=True`` (with their path, label and
defect type); with ``overlap=True`` the original test row stays as well and the
train copy's id is ``"<original id>@train"``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from comet_pipeline.data.schema import validate_table

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS: tuple[str, ...] = (
    "category",
    "requested_ratio",
    "n_clean_train",
    "n_requested",
    "n_injected",
    "actual_ratio",
    "capped",
)
OVERLAP_SUFFIX = "@train"


def contaminate(
    table: pd.DataFrame, ratio: float, seed: int = 0, overlap: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inject ``round(ratio * n_clean_train)`` random defective test images per category into train.

    ``n_clean_train`` counts the nominal (label 0) training images of the category.
    When fewer defective test images exist than requested, all are injected and a
    warning gives requested vs available. Returns ``(validated table, summary)``
    where the summary has one row per category (columns :data:`SUMMARY_COLUMNS`).
    """
    try:
        ratio = float(ratio)
    except (TypeError, ValueError) as err:
        raise ValueError(f"ratio={ratio!r} must be a number in [0, 1]") from err
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio={ratio} is out of range; allowed range is 0 <= ratio <= 1")
    table = validate_table(table)
    rng = np.random.default_rng(seed)
    selected: list[np.ndarray] = []
    summary: list[dict] = []
    for category in sorted(table["category"].unique()):
        in_category = table["category"] == category
        n_clean = int((in_category & (table["split"] == "train") & (table["label"] == 0)).sum())
        if n_clean == 0:
            raise ValueError(f"category {category!r} has no clean (label 0) training images to contaminate")
        candidates = np.flatnonzero(
            in_category & (table["split"] == "test") & (table["label"] == 1) & ~table["injected"]
        )
        n_requested = round(ratio * n_clean)
        n_injected = min(n_requested, len(candidates))
        if n_injected < n_requested:
            logger.warning(
                "category %r: ratio %.4g of %d clean training images requests %d defective images but only %d "
                "are available in test; injecting %d (actual ratio %.4g)",
                category, ratio, n_clean, n_requested, len(candidates), n_injected, n_injected / n_clean,
            )
        selected.append(np.sort(rng.choice(candidates, size=n_injected, replace=False)))
        summary.append(
            {
                "category": category,
                "requested_ratio": ratio,
                "n_clean_train": n_clean,
                "n_requested": n_requested,
                "n_injected": n_injected,
                "actual_ratio": n_injected / n_clean,
                "capped": n_injected < n_requested,
            }
        )
    rows = np.concatenate(selected) if selected else np.array([], dtype=int)
    injected = table.iloc[rows].assign(split="train", injected=True)
    if overlap:
        injected["sample_id"] = injected["sample_id"] + OVERLAP_SUFFIX
        result = pd.concat([table, injected], ignore_index=True)
    else:
        result = table.copy()
        result.iloc[rows] = injected
    logger.info("contamination ratio %.4g (overlap=%s): injected %d images", ratio, overlap, len(rows))
    return validate_table(result), pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS))
