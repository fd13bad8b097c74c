"""Built-in demo dataset: an MVTec-layout folder generated without any download.

Texture categories are random crops of the texture photos shipped with
scikit-image (``brick``, ``grass``, ``gravel``); the object category ``widget`` is
a drawn hex nut on a low-contrast background. Nominal images vary in position,
orientation, scale, lighting and tint strongly enough that global image
statistics (mean, std) hardly separate defective images; defects are local:
``scratch``, ``hole``, ``stain``, ``missing``. Each mask marks exactly the
pixels a defect changed.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage.draw import polygon2mask

from comet_pipeline.data.schema import NOMINAL

logger = logging.getLogger(__name__)

TEXTURE_TINTS: dict[str, tuple[float, float, float]] = {
    "brick": (1.0, 0.66, 0.52),
    "grass": (0.66, 0.92, 0.50),
    "gravel": (0.92, 0.88, 0.80),
}
OBJECTS: tuple[str, ...] = ("widget",)
CATEGORIES: tuple[str, ...] = (*TEXTURE_TINTS, *OBJECTS)
DEFECT_TYPES: tuple[str, ...] = ("scratch", "hole", "stain", "missing")
MANIFEST = "generator.json"
GENERATOR_VERSION = 1

_CROP = 288  # nominal texture crop (pixels of the 512x512 source) before the scale jitter
_AREA_RANGE = (0.008, 0.085)  # accepted defect area as a fraction of the image
_ALPHA_MIN = 0.1  # defect opacity below this is cut to 0, so the mask is exactly the changed pixels
_MAX_TRIES = 20
_STAIN_COLOURS = np.array([[0.36, 0.22, 0.10], [0.62, 0.30, 0.10], [0.20, 0.30, 0.62], [0.28, 0.50, 0.20]])


@dataclass
class _Scene:
    """A nominal image (float RGB in [0, 1]) and what defects may use."""

    image: np.ndarray
    support: np.ndarray  # where a defect may change pixels (opacity factor in [0, 1])
    centers: np.ndarray  # (K, 2) candidate defect centres (row, col)
    cut_centers: np.ndarray  # (K, 2) candidate centres of a "missing" cut
    fill: Callable[[], np.ndarray]  # what a "missing" region shows (blurred/foreign texture, background)


@lru_cache(maxsize=None)
def _texture_source(name: str) -> Image.Image:
    """A scikit-image texture photo (8-bit grey)."""
    return Image.fromarray(getattr(skimage.data, name)())


def _random_crop(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random crop (position, scale ±15 %, flip, 90° rotation) of a texture, resized to ``size``."""
    source = _texture_source(name)
    crop = int(round(_CROP * rng.uniform(0.85, 1.15)))
    y, x = rng.integers(0, source.height - crop + 1, size=2)
    patch = source.crop((x, y, x + crop, y + crop)).resize((size, size), Image.Resampling.BILINEAR)
    patch = np.rot90(np.asarray(patch, dtype=np.float64) / 255.0, k=int(rng.integers(4)))
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def _grid_points(size: int, low: float = 0.15, high: float = 0.85) -> np.ndarray:
    """All pixel positions of the central ``[low, high]`` square as (K, 2)."""
    axis = np.arange(int(low * size), int(high * size))
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


def _texture_scene(category: str, size: int, rng: np.random.Generator) -> _Scene:
    """Tinted texture crop with contrast, brightness and tint jitter."""
    grey = _random_crop(category, size, rng)
    mean = grey.mean()
    grey = (grey - mean) * np.exp(rng.uniform(np.log(0.6), np.log(1.5))) + mean + rng.uniform(-0.12, 0.12)
    tint = np.asarray(TEXTURE_TINTS[category]) * (1.0 + rng.normal(0.0, 0.04, 3))

    def fill() -> np.ndarray:
        if rng.random() < 0.5:  # blurred texture
            patch = ndimage.gaussian_filter(grey, sigma=size * rng.uniform(0.015, 0.03))
        else:  # foreign texture with the image's own mean and spread
            foreign = _random_crop(str(rng.choice([t for t in TEXTURE_TINTS if t != category])), size, rng)
            patch = (foreign - foreign.mean()) / foreign.std() * grey.std() + grey.mean()
        return np.clip(patch[..., None] * tint, 0.0, 1.0)

    points = _grid_points(size)
    return _Scene(np.clip(grey[..., None] * tint, 0.0, 1.0), np.ones((size, size)), points, points, fill)


def _widget_scene(size: int, rng: np.random.Generator) -> _Scene:
    """A hex nut (facets, chamfer ring, bore) on a low-contrast background, random pose and lighting."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    light = rng.uniform(0, 2 * np.pi)
    gain = rng.uniform(0.75, 1.25)
    gradient = 1.0 + 0.15 * ((cols - size / 2) * np.cos(light) + (rows - size / 2) * np.sin(light)) / size

    texture = _random_crop("gravel", size, rng)
    base = np.array([0.34, 0.37, 0.42]) * (1.0 + rng.normal(0.0, 0.05, 3))
    background = base * (1.0 + 0.25 * (texture - texture.mean()))[..., None]

    centre = size * (0.5 + rng.uniform(-0.08, 0.08, size=2))
    radius = size * 0.3 * rng.uniform(0.92, 1.08)
    angle = rng.uniform(0, np.pi / 3)
    corners = angle + np.arange(6) * np.pi / 3
    hexagon = np.stack([centre[0] + radius * np.sin(corners), centre[1] + radius * np.cos(corners)], axis=1)
    body = ndimage.gaussian_filter(polygon2mask((size, size), hexagon).astype(np.float64), 0.7)
    dist = np.hypot(rows - centre[0], cols - centre[1])
    bore = np.clip((dist - 0.38 * radius) / 1.5, 0.0, 1.0)  # 0 inside the bore, soft 1.5 px edge
    support = body * bore

    theta = np.arctan2(rows - centre[0], cols - centre[1])
    facet = np.floor((theta - angle) / (np.pi / 3)) * (np.pi / 3) + angle + np.pi / 6
    shade = 0.78 + 0.16 * np.cos(facet - light) * np.clip(dist / radius, 0, 1)
    ring = np.exp(-(((dist - 0.8 * radius) / (0.03 * radius)) ** 2))
    metal = np.array([0.74, 0.72, 0.66]) * (1.0 + rng.normal(0.0, 0.03, 3))
    part = metal * (shade - 0.18 * ring)[..., None]

    background = np.clip(background * gradient[..., None] * gain, 0.0, 1.0)
    image = np.clip(part * gradient[..., None] * gain, 0.0, 1.0) * support[..., None]
    image += background * (1.0 - support[..., None])
    solid = support > 0.9
    edge = solid & ~ndimage.binary_erosion(solid, iterations=max(1, size // 64))
    return _Scene(image, support, np.argwhere(solid), np.argwhere(edge), lambda: background)


def _blob(size: int, centre: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Irregular filled polygon (smoothly varying radius) as a bool mask."""
    n = 16
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    wobble = ndimage.gaussian_filter1d(rng.normal(0.0, 0.35, n), 1.0, mode="wrap")
    radii = radius * np.clip(1.0 + wobble, 0.4, 1.6)
    vertices = np.stack([centre[0] + radii * np.sin(angles), centre[1] + radii * np.cos(angles)], axis=1)
    return polygon2mask((size, size), vertices)


def _scratch(scene: _Scene, centre: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Thin curved bright or dark line."""
    size = scene.image.shape[0]
    length = size * rng.uniform(0.35, 0.6)
    direction = rng.uniform(0, 2 * np.pi)
    step = np.array([np.sin(direction), np.cos(direction)]) * length / 2
    bend = np.array([-step[1], step[0]]) * rng.uniform(-0.6, 0.6)
    t = np.linspace(0.0, 1.0, 40)[:, None]
    start, end, control = centre - step, centre + step, centre + bend
    curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end  # quadratic Bézier
    canvas = Image.new("L", (size, size), 0)
    width = max(1, int(round(size * rng.uniform(0.015, 0.03))))
    ImageDraw.Draw(canvas).line([(c, r) for r, c in curve], fill=255, width=width, joint="curve")
    alpha = np.asarray(canvas, dtype=np.float64) / 255.0 * rng.uniform(0.7, 0.95)
    tone = rng.uniform(0.85, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.12)
    return alpha, np.full_like(scene.image, tone)


def _hole(scene: _Scene, centre: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dark irregular blob that keeps a trace of the surface texture."""
    size = scene.image.shape[0]
    alpha = _blob(size, centre, size * rng.uniform(0.06, 0.11), rng).astype(np.float64)
    return alpha * rng.uniform(0.85, 1.0), scene.image * rng.uniform(0.1, 0.35)


def _stain(scene: _Scene, centre: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Soft-edged colour blob."""
    size = scene.image.shape[0]
    radius = size * rng.uniform(0.07, 0.13)
    blob = _blob(size, centre, radius, rng).astype(np.float64)
    alpha = ndimage.gaussian_filter(blob, radius * 0.25) * rng.uniform(0.6, 0.85)
    colour = _STAIN_COLOURS[rng.integers(len(_STAIN_COLOURS))] * rng.uniform(0.8, 1.2)
    return alpha, np.broadcast_to(np.clip(colour, 0, 1), scene.image.shape)


def _missing(scene: _Scene, centre: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A region that shows ``scene.fill`` (blurred/foreign texture, or background behind a cut-away part)."""
    size = scene.image.shape[0]
    rows, cols = np.mgrid[0:size, 0:size]
    axes = size * rng.uniform(0.08, 0.14, size=2)
    phi = rng.uniform(0, np.pi)
    u = (rows - centre[0]) * np.cos(phi) + (cols - centre[1]) * np.sin(phi)
    v = -(rows - centre[0]) * np.sin(phi) + (cols - centre[1]) * np.cos(phi)
    return ((u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1.0).astype(np.float64), scene.fill()


_DEFECTS: dict[str, Callable[[_Scene, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "scratch": _scratch,
    "hole": _hole,
    "stain": _stain,
    "missing": _missing,
}


def render_sample(
    category: str, defect_type: str, image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one sample: ``(nominal uint8 HxWx3, image uint8 HxWx3, mask bool HxW)``.

    ``image`` is ``nominal`` with the defect applied (identical for ``"good"``);
    ``mask`` is True exactly where the defect changed the image.
    """
    if category not in CATEGORIES:
        raise ValueError(f"category={category!r} is not a built-in category; expected one of {CATEGORIES}")
    if defect_type != NOMINAL and defect_type not in _DEFECTS:
        raise ValueError(f"defect_type={defect_type!r} is unknown; expected {NOMINAL!r} or one of {DEFECT_TYPES}")
    scene = _widget_scene(image_size, rng) if category in OBJECTS else _texture_scene(category, image_size, rng)
    image, alpha = scene.image, np.zeros((image_size, image_size))
    if defect_type != NOMINAL:
        candidates = scene.cut_centers if defect_type == "missing" else scene.centers
        for _ in range(_MAX_TRIES):  # redraw until the area is realistic; the last draw is kept
            centre = candidates[rng.integers(len(candidates))].astype(np.float64)
            shape, replacement = _DEFECTS[defect_type](scene, centre, rng)
            alpha = shape * scene.support
            alpha[alpha < _ALPHA_MIN] = 0.0
            if _AREA_RANGE[0] <= np.count_nonzero(alpha) / alpha.size <= _AREA_RANGE[1]:
                break
        image = image * (1.0 - alpha[..., None]) + replacement * alpha[..., None]
    noise = rng.standard_normal(size=image.shape, dtype=np.float32) * (255.0 * rng.uniform(0.008, 0.02))

    def to_uint8(x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(x * 255.0 + noise), 0, 255).astype(np.uint8)

    nominal = to_uint8(scene.image)
    return nominal, (nominal if defect_type == NOMINAL else to_uint8(image)), alpha > 0


def _category_rng(seed: int, category: str) -> np.random.Generator:
    """Independent stream per category, whatever the set and order of categories."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(category.encode())]))


def _planned_files(category: str, params: dict) -> list[tuple[str, Path, Path | None]]:
    """``(defect_type, image path, mask path or None)`` relative to root, in generation order."""
    base = Path(category)
    files = [(NOMINAL, base / "train" / NOMINAL / f"{i:03d}.png", None) for i in range(params["n_train"])]
    files += [(NOMINAL, base / "test" / NOMINAL / f"{i:03d}.png", None) for i in range(params["n_test_good"])]
    for defect in DEFECT_TYPES:
        files += [
            (defect, base / "test" / defect / f"{i:03d}.png", base / "ground_truth" / defect / f"{i:03d}_mask.png")
            for i in range(params["n_test_defect_per_type"])
        ]
    return files


def _check_params(params: dict) -> None:
    unknown = [c for c in params["categories"] if c not in CATEGORIES]
    if not params["categories"] or unknown or len(set(params["categories"])) != len(params["categories"]):
        raise ValueError(
            f"categories={params['categories']} must be distinct built-in categories from {CATEGORIES}"
        )
    minimum = {"n_train": 1, "n_test_good": 0, "n_test_defect_per_type": 0, "image_size": 32}
    for name, low in minimum.items():
        if not isinstance(params[name], int) or params[name] < low:
            raise ValueError(f"{name}={params[name]!r} must be an integer >= {low}")


def _read_manifest(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the generator manifest {path} ({err}); delete it to regenerate") from err


def generate_dataset(
    root: str | Path,
    categories: tuple[str, ...] | list[str] = ("brick", "grass", "gravel", "widget"),
    n_train: int = 50,
    n_test_good: int = 12,
    n_test_defect_per_type: int = 5,
    image_size: int = 224,
    seed: int = 0,
) -> Path:
    """Write the demo dataset into ``root`` (MVTec layout) and return ``root``.

    Idempotent: ``root/generator.json`` records the parameters; when they match
    and every file exists nothing is written. Otherwise the categories generated
    earlier in ``root`` are removed and everything is regenerated. Category
    folders that the generator did not create are never touched (FileExistsError).
    """
    root = Path(root)
    params = {
        "generator_version": GENERATOR_VERSION,
        "categories": list(categories),
        "n_train": n_train,
        "n_test_good": n_test_good,
        "n_test_defect_per_type": n_test_defect_per_type,
        "image_size": image_size,
        "seed": seed,
    }
    _check_params(params)
    manifest_path = root / MANIFEST
    previous = _read_manifest(manifest_path)
    planned = {c: _planned_files(c, params) for c in params["categories"]}
    if previous == {**params, "complete": True} and all(
        (root / path).is_file() and (mask is None or (root / mask).is_file())
        for files in planned.values()
        for _, path, mask in files
    ):
        logger.info("built-in dataset in %s is up to date (%s); nothing generated", root, manifest_path)
        return root

    owned = set(previous["categories"]) if previous else set()
    foreign = [str(root / c) for c in params["categories"] if (root / c).exists() and c not in owned]
    if foreign:
        raise FileExistsError(
            f"{foreign} exist but were not created by the generator (no entry in {manifest_path}); "
            "remove them or generate into another root"
        )
    for category in sorted(owned):
        shutil.rmtree(root / category, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps({**params, "complete": False}, indent=2))

    start = time.perf_counter()
    for category, files in planned.items():
        rng = _category_rng(seed, category)
        for defect, path, mask_path in files:
            _, image, mask = render_sample(category, defect, image_size, rng)
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / path, compress_level=1)
            if mask_path is not None:
                (root / mask_path).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask.astype(np.uint8) * 255).save(root / mask_path, compress_level=1)
    manifest_path.write_text(json.dumps({**params, "complete": True}, indent=2))
    n_files = sum(len(files) for files in planned.values())
    logger.info("generated %d images of %s in %s (%.1f s)", n_files, params["categories"], root, time.perf_counter() - start)
    return root
