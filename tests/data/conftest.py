"""Shared fixtures: small image trees written with PIL under tmp_path."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SIZE = (24, 32)  # (height, width) of the test images


def _write(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def write_rgb() -> Callable[..., Path]:
    """Write a random RGB image (seeded by its path) of ``size`` (h, w) to ``path``."""

    def write(path: Path, size: tuple[int, int] = SIZE) -> Path:
        rng = np.random.default_rng(zlib.crc32(str(path).encode()))
        return _write(path, Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)))

    return write


@pytest.fixture
def write_mask() -> Callable[..., Path]:
    """Write a 0/255 mask with a positive square (or empty) of ``size`` (h, w) to ``path``."""

    def write(path: Path, size: tuple[int, int] = SIZE, positive: bool = True) -> Path:
        mask = np.zeros(size, dtype=np.uint8)
        if positive:
            mask[4:10, 5:12] = 255
        return _write(path, Image.fromarray(mask))

    return write


@pytest.fixture
def mvtec_root(tmp_path: Path, write_rgb, write_mask) -> Callable[..., Path]:
    """Factory for an MVTec-layout tree ``<root>/thing/...``; duplicate stems across defect folders."""

    def build(with_ground_truth: bool = True, category: str = "thing") -> Path:
        root = tmp_path / "mvtec"
        base = root / category
        for i in range(3):
            write_rgb(base / "train" / "good" / f"{i:03d}.png")
        for i in range(2):
            write_rgb(base / "test" / "good" / f"{i:03d}.png")
        for defect, n in (("crack", 2), ("dent", 1)):
            for i in range(n):
                write_rgb(base / "test" / defect / f"{i:03d}.png")
                if with_ground_truth:
                    write_mask(base / "ground_truth" / defect / f"{i:03d}_mask.png")
        return root

    return build


@pytest.fixture
def ksdd2_root(tmp_path: Path, write_rgb, write_mask) -> Path:
    """KSDD2 tree: train has 2 nominal + 1 defective, test has 1 nominal + 2 defective."""
    root = tmp_path / "ksdd2"
    for split, positives in (("train", (False, False, True)), ("test", (False, True, True))):
        for i, positive in enumerate(positives):
            write_rgb(root / split / f"{i}.png")
            write_mask(root / split / f"{i}_GT.png", positive=positive)
    return root
