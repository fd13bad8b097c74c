"""Every row of the data fault table, end to end through the data_ingestion node (and the image loaders)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comet_pipeline.data.contamination import contaminate
from comet_pipeline.data.images import ImageReadError, load_mask, load_rgb
from comet_pipeline.data.readers import read_dataset
from comet_pipeline.pipelines.data_ingestion.nodes import ingest

from reliability_helpers import SIZE, binary_mask, bomb_png, rgb, save


def _ingest(root: Path, categories: list[str], on_error: str):
    return ingest({"source": "folder", "root": str(root), "categories": categories, "on_error": on_error})


def _truncated(path: Path) -> None:
    save(path, rgb("t", (64, 64)))
    path.write_bytes(path.read_bytes()[:200])


FAULTS: dict[str, tuple[str, Callable[[Path], None], type[Exception], str]] = {
    # name: (file in train/good, writer, error in fail mode, reason in the message)
    "truncated": ("bad.png", _truncated, ImageReadError, "corrupt/truncated"),
    "corrupt": ("bad.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20), ImageReadError, "corrupt"),
    "zero-byte": ("bad.jpg", lambda p: p.write_bytes(b""), ImageReadError, "0 bytes"),
    "non-image": ("notes.txt", lambda p: p.write_text("not an image"), ValueError, "is not an image file"),
    "decompression-bomb": ("bad.png", lambda p: p.write_bytes(bomb_png()), ImageReadError, "image too large"),
    "duplicate-stem": ("001.tif", lambda p: rgb("dup").save(p), ValueError, "same file stem"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_unusable_file_fails_with_its_path_or_is_reported(mvtec_tree, fault: str) -> None:
    name, write, error, reason = FAULTS[fault]
    root = mvtec_tree()
    bad = root / "part" / "train" / "good" / name
    write(bad)
    with pytest.raises(error, match=reason) as excinfo:
        _ingest(root, ["part"], "fail")
    assert str(bad) in str(excinfo.value)

    samples, report = _ingest(root, ["part"], "skip")
    assert report["path"].tolist() == [str(bad)] and reason in report["problem"].item()
    assert len(samples) == 3 + 4 and str(bad.resolve()) not in set(samples["path"])


@pytest.mark.parametrize(
    ("mode", "make"),
    [
        ("I;16", lambda: Image.fromarray((np.arange(SIZE[0] * SIZE[1]).reshape(SIZE) * 200).astype(np.uint16))),
        ("L", lambda: rgb("g").convert("L")),
        ("RGBA", lambda: rgb("a").convert("RGBA")),
        ("P", lambda: rgb("p").convert("P", palette=Image.ADAPTIVE, colors=16)),
        ("1", lambda: rgb("b").convert("1")),
    ],
)
def test_any_image_mode_is_ingested_and_loads_as_rgb(mvtec_tree, mode: str, make) -> None:
    root = mvtec_tree()
    path = save(root / "part" / "train" / "good" / "odd.png", make())
    assert Image.open(path).mode == mode
    samples, report = _ingest(root, ["part"], "fail")
    assert report.empty
    row = samples.set_index("sample_id").loc["part/train/good/odd"]
    image = load_rgb(row["path"])
    assert image.shape == (*SIZE, 3) and image.dtype == np.uint8


def test_mask_of_wrong_size_names_mask_and_image(mvtec_tree) -> None:
    root = mvtec_tree()
    mask = save(root / "part" / "ground_truth" / "crack" / "001_mask.png", binary_mask((SIZE[0] + 3, SIZE[1])))
    image = root / "part" / "test" / "crack" / "001.png"
    with pytest.raises(ValueError, match="must have its image's size") as excinfo:
        _ingest(root, ["part"], "fail")
    assert str(mask) in str(excinfo.value) and str(image) in str(excinfo.value)
    samples, report = _ingest(root, ["part"], "skip")
    assert report["path"].tolist() == [str(image)]
    assert "part/test/crack/001" not in set(samples["sample_id"])


def test_non_binary_masks_are_binarised_with_a_warning(mvtec_tree, caplog) -> None:
    root = mvtec_tree()
    ramp = np.tile(np.linspace(0, 255, SIZE[1]).astype(np.uint8), (SIZE[0], 1))  # anti-aliased / JPEG-like
    grey = save(root / "part" / "ground_truth" / "crack" / "000_mask.png", Image.fromarray(ramp))
    ones = np.zeros(SIZE, dtype=np.uint8)
    ones[2:5, 2:5] = 1  # a 0/1 label image
    zero_one = save(root / "part" / "ground_truth" / "crack" / "001_mask.png", Image.fromarray(ones))
    with caplog.at_level(logging.WARNING, logger="comet_pipeline.data.images"):
        samples, report = _ingest(root, ["part"], "fail")
    assert report.empty and (samples["mask_path"] != "").sum() == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert any(str(grey) in w and "binarised at > 127" in w for w in warnings)
    assert any(str(zero_one) in w and "0/1" in w for w in warnings)
    np.testing.assert_array_equal(load_mask(grey), ramp > 127)
    assert load_mask(zero_one).sum() == 9


def test_same_file_names_in_different_defect_folders_stay_apart(mvtec_tree) -> None:
    root = mvtec_tree()
    base = root / "part"
    save(base / "test" / "hole" / "000.png", rgb("hole0"))  # same name as test/crack/000.png and test/good/000.png
    empty = np.zeros(SIZE, dtype=np.uint8)
    empty[0:2, 0:2] = 255
    save(base / "ground_truth" / "hole" / "000_mask.png", Image.fromarray(empty))
    samples, report = _ingest(root, ["part"], "fail")
    assert report.empty and samples["sample_id"].is_unique
    test = samples[samples["split"] == "test"].set_index("sample_id")
    assert {"part/test/good/000", "part/test/crack/000", "part/test/hole/000"} <= set(test.index)
    assert test.loc["part/test/hole/000", "mask_path"].endswith("hole/000_mask.png")
    assert load_mask(test.loc["part/test/hole/000", "mask_path"]).sum() == 4
    assert load_mask(test.loc["part/test/crack/000", "mask_path"]).sum() == 30
    manifest, _ = contaminate(samples, ratio=1.0, seed=0, overlap=True)
    assert manifest["sample_id"].is_unique and manifest["injected"].sum() == 3


def test_non_ascii_category_and_file_names(tmp_path: Path, mvtec_tree) -> None:
    root = mvtec_tree("bürste", root=tmp_path / "données")
    path = save(root / "bürste" / "test" / "crack" / "défaut_01.png", rgb("défaut"))
    save(root / "bürste" / "ground_truth" / "crack" / "défaut_01_mask.png", binary_mask())
    samples, report = _ingest(root, ["bürste"], "fail")
    assert report.empty and set(samples["category"]) == {"bürste"}
    row = samples.set_index("sample_id").loc["bürste/test/crack/défaut_01"]
    assert row["path"] == str(path.resolve())
    assert load_rgb(row["path"]).shape == (*SIZE, 3) and load_mask(row["mask_path"]).any()
    # the same tree read directly, and a bad file with a non-ASCII name is named in the error
    (root / "bürste" / "train" / "good" / "kaputt_ä.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="kaputt_ä.png"):
        read_dataset(root, ["bürste"])
