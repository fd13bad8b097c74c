"""images.load_rgb / load_mask: mode conversion and explicit errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from comet_pipeline.data.images import ImageReadError, image_size, load_mask, load_rgb


def _save(path: Path, image: Image.Image) -> Path:
    image.save(path)
    return path


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("grey.png", lambda: Image.new("L", (5, 4), 200), (200, 200, 200)),
        ("binary.png", lambda: Image.new("1", (5, 4), 1), (255, 255, 255)),
        ("sixteen.png", lambda: Image.fromarray(np.full((4, 5), 65535, np.uint16)), (255, 255, 255)),
        ("int32.tif", lambda: Image.fromarray(np.full((4, 5), 257 * 100, np.int32)), (100, 100, 100)),
        ("rgba.png", lambda: Image.new("RGBA", (5, 4), (200, 100, 50, 255)), (200, 100, 50)),
        ("transparent.png", lambda: Image.new("RGBA", (5, 4), (200, 100, 50, 0)), (0, 0, 0)),
        ("half.png", lambda: Image.new("LA", (5, 4), (200, 128)), (100, 100, 100)),
        ("palette.png", lambda: Image.new("RGB", (5, 4), (10, 20, 30)).convert("P", palette=Image.Palette.ADAPTIVE), (10, 20, 30)),
        ("cmyk.jpg", lambda: Image.new("CMYK", (5, 4), (0, 0, 0, 0)), (255, 255, 255)),
    ],
)
def test_load_rgb_converts_modes(tmp_path: Path, name, make, expected) -> None:
    image = load_rgb(_save(tmp_path / name, make()))
    assert image.dtype == np.uint8 and image.shape == (4, 5, 3)
    np.testing.assert_allclose(image.reshape(-1, 3).mean(0), expected, atol=2)


def test_sixteen_bit_keeps_gradation(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 20, dtype=np.uint16).reshape(4, 5)
    image = load_rgb(_save(tmp_path / "ramp.png", Image.fromarray(ramp)))
    assert len(np.unique(image[..., 0])) == 20


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.png", b"", "empty"),
        ("notes.png", b"this is not an image", "not a decodable image"),
    ],
)
def test_unreadable_files_name_path_and_reason(tmp_path: Path, name, content, reason) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        load_rgb(path)
    assert info.value.path == str(path) and str(path) in str(info.value)


def test_truncated_file_is_an_error(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.png", Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        image_size(truncated)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert image_size(good) == (64, 64)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist"):
        load_rgb(tmp_path / "nope.png")


def test_load_mask_threshold_and_sixteen_bit(tmp_path: Path) -> None:
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(load_mask(_save(tmp_path / "m.png", Image.fromarray(grey))), [[0, 0, 1, 1]])
    wide = np.array([[0, 60000]], np.uint16)
    mask = load_mask(_save(tmp_path / "m16.png", Image.fromarray(wide)), expected_size=(1, 2))
    assert mask.dtype == bool and mask.tolist() == [[False, True]]


def test_load_mask_size_mismatch_names_both_files(tmp_path: Path) -> None:
    mask = _save(tmp_path / "a_mask.png", Image.new("L", (8, 6)))
    with pytest.raises(ValueError) as info:
        load_mask(mask, expected_size=(10, 8), image_path=tmp_path / "a.png")
    message = str(info.value)
    assert str(mask) in message and str(tmp_path / "a.png") in message and "6x8" in message and "10x8" in message
