"""synthetic.generate_dataset: layout, idempotence, determinism, realism of the demo data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from comet_pipeline.data.readers import read_mvtec
from comet_pipeline.data.synthetic import CATEGORIES, DEFECT_TYPES, generate_dataset, render_sample

TINY = {"n_train": 3, "n_test_good": 2, "n_test_defect_per_type": 2, "image_size": 64}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("tiny"), **TINY)


def test_layout_readable_and_masks_valid(tiny_root: Path) -> None:
    for category in CATEGORIES:
        table, report = read_mvtec(tiny_root, category)
        assert report.empty
        assert table.groupby(["split", "defect_type"]).size().to_dict() == {
            ("train", "good"): 3,
            ("test", "good"): 2,
            **{("test", d): 2 for d in DEFECT_TYPES},
        }
        for _, row in table[table["label"] == 1].iterrows():
            mask = np.asarray(Image.open(row["mask_path"]))
            assert mask.shape == (64, 64) == np.asarray(Image.open(row["path"])).shape[:2]
            assert set(np.unique(mask)) == {0, 255}
            assert 0.005 <= (mask > 0).mean() <= 0.1


def test_second_call_is_a_no_op(tiny_root: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in tiny_root.rglob("*")}
    start = time.perf_counter()
    generate_dataset(tiny_root, **TINY)
    assert time.perf_counter() - start < 5.0  # nothing regenerated (a generation takes seconds)
    assert {p: p.stat().st_mtime_ns for p in tiny_root.rglob("*")} == before


def test_deterministic_by_seed(tmp_path: Path) -> None:
    config = {**TINY, "categories": ("grass", "widget")}
    first = _files(generate_dataset(tmp_path / "a", **config))
    assert first == _files(generate_dataset(tmp_path / "b", **config))
    other = _files(generate_dataset(tmp_path / "c", **config, seed=1))
    assert first.keys() == other.keys() and first != other


def test_changed_parameters_regenerate(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path, categories=("brick", "widget"), **TINY)
    generate_dataset(root, categories=("brick",), **{**TINY, "n_train": 4})
    assert not (root / "widget").exists()
    assert len(list((root / "brick" / "train" / "good").iterdir())) == 4
    (root / "brick" / "test" / "hole" / "000.png").unlink()  # a missing file triggers regeneration too
    generate_dataset(root, categories=("brick",), **{**TINY, "n_train": 4})
    assert (root / "brick" / "test" / "hole" / "000.png").is_file()


def test_refuses_foreign_folders_and_bad_parameters(tmp_path: Path) -> None:
    (tmp_path / "brick").mkdir()
    with pytest.raises(FileExistsError, match="brick"):
        generate_dataset(tmp_path, categories=("brick",), **TINY)
    with pytest.raises(ValueError, match="categories"):
        generate_dataset(tmp_path / "x", categories=("carpet",), **TINY)
    with pytest.raises(ValueError, match="image_size"):
        generate_dataset(tmp_path / "x", **{**TINY, "image_size": 8})


@pytest.mark.parametrize("category", CATEGORIES)
def test_defects_are_local_and_visible(category: str) -> None:
    rng = np.random.default_rng(0)
    for defect in DEFECT_TYPES:
        nominal, image, mask = render_sample(category, defect, 96, rng)
        diff = np.abs(image.astype(float) - nominal).mean(axis=-1)
        assert mask.any() and not diff[~mask].any()  # nothing changes outside the mask
        assert diff[mask].mean() > 10, (category, defect)  # grey levels


def test_global_statistics_do_not_separate_defects(tmp_path: Path) -> None:
    """Pixel mean / std as anomaly scores stay weak (image AUROC < 0.8) with the default config."""
    root = generate_dataset(tmp_path)
    for category in CATEGORIES:
        table, _ = read_mvtec(root, category)
        test = table[table["split"] == "test"]
        pixels = [np.asarray(Image.open(p), dtype=np.float64) for p in test["path"]]
        for name, statistic in (("mean", np.mean), ("std", np.std)):
            auc = roc_auc_score(test["label"], [statistic(x) for x in pixels])
            assert max(auc, 1 - auc) < 0.8, (category, name, auc)
