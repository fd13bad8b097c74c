"""The sample table every stage passes around: one row per image.

Columns (pandas dtypes in brackets):

- ``sample_id`` [str]: unique, ``"<category>/<original split>/<defect_type>/<file stem>"``.
- ``path`` [str]: absolute path of the image file.
- ``category`` [str]: e.g. ``"bottle"``.
- ``split`` [str]: ``"train"`` or ``"test"`` (after contamination, injected images are ``"train"``).
- ``label`` [int]: 0 nominal, 1 anomalous (ground truth; used for evaluation only).
- ``defect_type`` [str]: ``"good"`` for nominal images.
- ``mask_path`` [str]: absolute path of the pixel mask, ``""`` when there is none.
- ``injected`` [bool]: moved from test into train by contamination (evaluation only).
"""

from __future__ import annotations

import pandas as pd

COLUMNS: tuple[str, ...] = (
    "sample_id",
    "path",
    "category",
    "split",
    "label",
    "defect_type",
    "mask_path",
    "injected",
)
DTYPES: dict[str, str] = {
    "sample_id": "string",
    "path": "string",
    "category": "string",
    "split": "string",
    "label": "int64",
    "defect_type": "string",
    "mask_path": "string",
    "injected": "bool",
}
NOMINAL = "good"


def make_table(rows: list[dict]) -> pd.DataFrame:
    """Build a sample table with the canonical column order and dtypes."""
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    if "injected" not in table or table["injected"].isna().all():
        table["injected"] = False
    table["mask_path"] = table["mask_path"].fillna("")
    return table.astype(DTYPES).reset_index(drop=True)


def validate_table(table: pd.DataFrame) -> pd.DataFrame:
    """Check columns, unique ids and allowed values; return the table in canonical form."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"sample table lacks columns {missing}; expected {list(COLUMNS)}")
    duplicated = table["sample_id"][table["sample_id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"sample table has duplicated sample_id values: {duplicated[:5]}")
    bad_split = sorted(set(table["split"]) - {"train", "test"})
    if bad_split:
        raise ValueError(f"sample table has split values {bad_split}; expected 'train' or 'test'")
    bad_label = sorted(set(table["label"].astype(int)) - {0, 1})
    if bad_label:
        raise ValueError(f"sample table has label values {bad_label}; expected 0 or 1")
    return table[list(COLUMNS)].astype(DTYPES).reset_index(drop=True)
