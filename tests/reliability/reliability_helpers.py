"""Helpers of the reliability suite: image writers, fault files, tiny in-memory experiment data."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from comet_pipeline.experiment import CategoryData

SIZE = (16, 20)  # (height, width) of the generated images


def rgb(seed: int | str, size: tuple[int, int] = SIZE) -> Image.Image:
    rng = np.random.default_rng(zlib.crc32(str(seed).encode()))
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def binary_mask(size: tuple[int, int] = SIZE) -> Image.Image:
    mask = np.zeros(size, dtype=np.uint8)
    mask[3:8, 4:10] = 255
    return Image.fromarray(mask)


def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width x height`` pixels (a decompression-bomb-sized image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def tiny_category(seed: int = 0, n_train: int = 24, n_test: int = 12, channels: int = 8) -> CategoryData:
    """In-memory CategoryData with random float16 features (N, 1, C, 4, 4); half of test is anomalous."""
    rng = np.random.default_rng(seed)

    def rows(split: str, n: int, anomalous: int) -> pd.DataFrame:
        labels = [0] * (n - anomalous) + [1] * anomalous
        return pd.DataFrame(
            {
                "sample_id": [f"cat/{split}/{i:03d}" for i in range(n)],
                "path": [f"/nonexistent/{split}/{i:03d}.png" for i in range(n)],
                "category": "cat",
                "split": split,
                "label": labels,
                "defect_type": ["good" if lab == 0 else "crack" for lab in labels],
                "mask_path": "",
                "injected": [lab == 1 for lab in labels],
            }
        )

    train_feats = rng.normal(size=(n_train, 1, channels, 4, 4))
    train_feats[-2:] += 3.0  # two injected anomalies
    test_feats = rng.normal(size=(n_test, 1, channels, 4, 4))
    test_feats[n_test // 2 :] += 3.0
    return CategoryData(
        "cat",
        rows("train", n_train, 2),
        rows("test", n_test, n_test // 2),
        train_feats.astype(np.float16),
        test_feats.astype(np.float16),
    )
