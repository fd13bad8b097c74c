"""Image and mask loading with explicit errors for unreadable files.

Every loader fully decodes the file (``Image.open`` + ``load``) so that truncated
or corrupt files fail here, with the path, rather than deep inside a model.
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is never changed: truncated files are errors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


class ImageReadError(ValueError):
    """An image file that cannot be decoded; ``.path`` is the offending file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


def is_image_file(path: str | Path) -> bool:
    """True when the file name has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_8bit(image: Image.Image) -> Image.Image:
    """Map high-bit-depth single-channel modes (I;16*, I, F) onto 8-bit ``L``.

    Integer modes are read as 16-bit data (0..65535 -> 0..255, as PNG/TIFF store
    them); float mode ``F`` is clipped to 0..255.
    """
    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64) / 257.0
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
    else:
        return image
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _decode(path: str | Path) -> Image.Image:
    """Open and fully decode ``path`` (first frame), returning an 8-bit PIL image."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty (0 bytes)")
    try:
        with Image.open(path) as image:
            image.load()
            return _to_8bit(image.copy())  # a closed PIL image loses its pixel data
    except Image.DecompressionBombError as err:
        raise ImageReadError(path, f"image too large ({err})") from err
    except Exception as err:  # Pillow raises OSError, SyntaxError, EOFError, ... for bad files
        raise ImageReadError(path, f"not a decodable image or corrupt/truncated ({err})") from err


def image_size(path: str | Path) -> tuple[int, int]:
    """Fully decode the image (readability check) and return its ``(height, width)``."""
    image = _decode(path)
    return image.height, image.width


def load_rgb(path: str | Path) -> np.ndarray:
    """Load any image as ``uint8`` array of shape ``(H, W, 3)``.

    Grayscale, 16-bit, palette, CMYK, ... are converted to RGB; images with an
    alpha channel (incl. palette transparency) are composited on black.
    """
    image = _decode(path)
    try:
        if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
            rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
            return ((rgba[..., :3] * rgba[..., 3:] + 127) // 255).astype(np.uint8)
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except Exception as err:
        raise ImageReadError(path, f"cannot convert mode {image.mode!r} to RGB ({err})") from err


def load_mask(
    path: str | Path,
    expected_size: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
) -> np.ndarray:
    """Load a pixel mask as ``bool`` array ``(H, W)``: grey value > 127 is anomalous.

    A mask with other grey levels than 0 and 255 (anti-aliased, JPEG) is
    binarised at > 127 with a warning naming the file; a 0/1 label image (max
    value 1) reads 1 as anomalous, also with a warning.

    ``expected_size`` is the ``(height, width)`` of the image the mask belongs to
    (``image_path``, used in the error message); a different size raises ValueError.
    """
    image = _decode(path)
    try:
        grey = np.asarray(image.convert("L"))
    except Exception as err:
        raise ImageReadError(path, f"cannot convert mode {image.mode!r} to grey ({err})") from err
    values = np.unique(grey)
    if values.size and values.max() == 1:  # a 0/1 label image: 1 would vanish under the > 127 rule
        logger.warning("mask %s holds values 0/1 instead of 0/255; reading 1 as anomalous", path)
        mask = grey > 0
    else:
        if not np.isin(values, (0, 255)).all():
            logger.warning(
                "mask %s is not binary (%d grey levels between %d and %d); binarised at > 127",
                path, values.size, int(values.min()), int(values.max()),
            )
        mask = grey > 127
    if expected_size is not None and mask.shape != tuple(expected_size):
        h, w = mask.shape
        eh, ew = expected_size
        raise ValueError(
            f"mask {path} is {h}x{w} (HxW) but image {image_path or '<unknown image>'} "
            f"is {eh}x{ew}; a mask must have its image's size"
        )
    return mask
