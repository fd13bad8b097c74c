"""readers: MVTec and KSDD2 layouts, ingestion report, clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comet_pipeline.data.images import ImageReadError
from comet_pipeline.data.readers import read_dataset, read_ksdd2, read_mvtec
from comet_pipeline.data.schema import COLUMNS, validate_table


def test_mvtec_with_ground_truth(mvtec_root) -> None:
    table, report = read_mvtec(mvtec_root(), "thing")
    assert list(table.columns) == list(COLUMNS) and report.empty
    validate_table(table)
    counts = table.groupby(["split", "defect_type"]).size().to_dict()
    assert counts == {("train", "good"): 3, ("test", "good"): 2, ("test", "crack"): 2, ("test", "dent"): 1}
    assert set(table["sample_id"]) >= {"thing/test/crack/000", "thing/test/dent/000", "thing/test/good/000"}
    defective = table[table["label"] == 1]
    assert (defective["defect_type"] != "good").all() and len(defective) == 3
    assert all(Path(p).is_file() and p.endswith("_mask.png") for p in defective["mask_path"])
    assert (table.loc[table["label"] == 0, "mask_path"] == "").all()
    assert not table["injected"].any() and all(Path(p).is_absolute() for p in table["path"])


def test_mvtec_without_ground_truth(mvtec_root) -> None:
    table, report = read_mvtec(mvtec_root(with_ground_truth=False), "thing")
    assert report.empty and len(table) == 8
    assert (table["mask_path"] == "").all() and table["label"].sum() == 3


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (32, 24), 90),
        Image.new("RGBA", (32, 24), (1, 2, 3, 100)),
        Image.fromarray(np.full((24, 32), 40000, np.uint16)),
        Image.new("RGB", (32, 24), (9, 9, 9)).convert("P"),
    ],
    ids=["grey", "rgba", "16bit", "palette"],
)
def test_mvtec_accepts_any_image_mode(mvtec_root, image) -> None:
    root = mvtec_root()
    image.save(root / "thing" / "train" / "good" / "odd.PNG")
    table, report = read_mvtec(root, "thing")
    assert report.empty and "thing/train/good/odd" in set(table["sample_id"])


def _corrupt(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"zero": b"", "corrupt": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "text": b"hello"}[kind]
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "error"),
    [("bad.png", "zero", ImageReadError), ("bad.png", "corrupt", ImageReadError), ("notes.txt", "text", ValueError)],
)
def test_bad_file_fail_and_skip(mvtec_root, caplog, name, kind, error) -> None:
    root = mvtec_root()
    bad = _corrupt(root / "thing" / "test" / "crack" / name, kind)
    with pytest.raises(error, match=str(bad)):
        read_mvtec(root, "thing", on_error="fail")
    with caplog.at_level(logging.WARNING):
        table, report = read_mvtec(root, "thing", on_error="skip")
    assert report["path"].tolist() == [str(bad)] and len(table) == 8
    assert str(bad) not in set(table["path"])
    assert any("skipped 1 unusable" in r.message for r in caplog.records)


def test_mask_size_mismatch(mvtec_root, write_mask) -> None:
    root = mvtec_root()
    mask = write_mask(root / "thing" / "ground_truth" / "crack" / "001_mask.png", size=(10, 10))
    image = root / "thing" / "test" / "crack" / "001.png"
    with pytest.raises(ValueError) as info:
        read_mvtec(root, "thing")
    assert str(mask) in str(info.value) and str(image) in str(info.value)
    table, report = read_mvtec(root, "thing", on_error="skip")
    assert report["path"].tolist() == [str(image)] and str(mask) in report["problem"].iloc[0]
    assert "thing/test/crack/001" not in set(table["sample_id"])


def test_missing_mask_and_orphan_mask_are_reported(mvtec_root, write_mask) -> None:
    root = mvtec_root()
    (root / "thing" / "ground_truth" / "crack" / "001_mask.png").unlink()
    orphan = write_mask(root / "thing" / "ground_truth" / "dent" / "007_mask.png")
    table, report = read_mvtec(root, "thing")  # not an unusable file: reported in fail mode too
    row = table.set_index("sample_id").loc["thing/test/crack/001"]
    assert row["label"] == 1 and row["mask_path"] == ""
    problems = dict(zip(report["path"], report["problem"]))
    assert "without mask" in problems[str(root / "thing" / "test" / "crack" / "001.png")]
    assert "without a matching image" in problems[str(orphan)]


def test_missing_root_and_category(tmp_path: Path, mvtec_root) -> None:
    with pytest.raises(FileNotFoundError, match="train/good") as info:
        read_mvtec(tmp_path / "absent", "thing")
    assert str(tmp_path / "absent") in str(info.value)
    root = mvtec_root()
    with pytest.raises(FileNotFoundError, match=r"other.*\['thing'\]"):
        read_mvtec(root, "other")


def test_empty_train_set(mvtec_root) -> None:
    root = mvtec_root()
    train = root / "thing" / "train" / "good"
    for path in train.iterdir():
        path.unlink()
    with pytest.raises(ValueError, match=f"empty training set.*{train}"):
        read_mvtec(root, "thing")


def test_invalid_on_error(mvtec_root) -> None:
    with pytest.raises(ValueError, match="on_error"):
        read_mvtec(mvtec_root(), "thing", on_error="ignore")


def test_ksdd2(ksdd2_root: Path) -> None:
    table, report = read_ksdd2(ksdd2_root)
    assert report.empty
    table = table.set_index("sample_id")
    assert table.loc["ksdd2/train/defect/2", "label"] == 1
    assert table.loc["ksdd2/train/defect/2", "split"] == "train"
    assert not table.loc["ksdd2/train/defect/2", "injected"]
    assert table.groupby(["split", "label"]).size().to_dict() == {("train", 0): 2, ("train", 1): 1, ("test", 0): 1, ("test", 1): 2}
    assert set(table.loc[table["label"] == 0, "defect_type"]) == {"good"}
    assert all(p.endswith("_GT.png") for p in table["mask_path"])


def test_ksdd2_image_without_mask(ksdd2_root: Path) -> None:
    (ksdd2_root / "test" / "1_GT.png").unlink()
    with pytest.raises(ValueError, match="1_GT.png"):
        read_ksdd2(ksdd2_root)
    table, report = read_ksdd2(ksdd2_root, on_error="skip")
    assert report["path"].tolist() == [str(ksdd2_root / "test" / "1.png")] and len(table) == 5


def test_read_dataset(mvtec_root, ksdd2_root: Path) -> None:
    mvtec_root(category="second")
    table, report = read_dataset(mvtec_root(), ["thing", "second"])
    assert len(table) == 16 and set(table["category"]) == {"thing", "second"} and report.empty
    table, _ = read_dataset(ksdd2_root, ["ksdd2"], layout="ksdd2")
    assert len(table) == 6
    with pytest.raises(ValueError, match=r"\['mvtec', 'ksdd2'\]"):
        read_dataset(ksdd2_root, ["ksdd2"], layout="visa")
