"""Fixtures of the reliability suite (helpers live in reliability_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reliability_helpers import binary_mask, rgb, save


@pytest.fixture
def mvtec_tree(tmp_path: Path) -> Callable[..., Path]:
    """``build(category="part")``: a clean MVTec tree (3 train, 2 test/good, 2 test/crack with masks)."""

    def build(category: str = "part", root: Path | None = None) -> Path:
        root = root or tmp_path / "dataset"
        base = root / category
        for i in range(3):
            save(base / "train" / "good" / f"{i:03d}.png", rgb(f"{category}train{i}"))
        for i in range(2):
            save(base / "test" / "good" / f"{i:03d}.png", rgb(f"{category}good{i}"))
            save(base / "test" / "crack" / f"{i:03d}.png", rgb(f"{category}crack{i}"))
            save(base / "ground_truth" / "crack" / f"{i:03d}_mask.png", binary_mask())
        return root

    return build
