"""Score a file or folder of images with a bundle: scores table + heat-map overlay PNGs.

Shared by the ``comet-pipeline score`` command and the Kedro ``inference`` pipeline.
Overlay colours run from transparent at the bundle's median normal score to red at
the decision threshold, so normal images stay mostly clear and anomalies glow.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from PIL import Image
from tqdm.auto import tqdm

from comet_pipeline.bundle import Bundle, load_bundle
from comet_pipeline.config import require
from comet_pipeline.data.images import is_image_file, load_rgb

logger = logging.getLogger(__name__)

SCORES_FILE = "scores.csv"
MAPS_DIR = "maps"
COLUMNS = ("path", "score", "normalised_score", "decision", "map", "error")


def collect_images(source: str | Path, exclude: str | Path | None = None) -> tuple[list[Path], Path]:
    """``(image files, root)``: one file, or every image file under a folder (recursive, sorted).

    Files under ``exclude`` (e.g. the output folder) are left out. Raises ``FileNotFoundError``
    for a missing source and ``ValueError`` for a folder without image files.
    """
    source = Path(source)
    if source.is_file():
        return [source], source.parent
    if not source.is_dir():
        raise FileNotFoundError(f"images {str(source)!r}: no such file or folder")
    skip = Path(exclude).resolve() if exclude is not None else None
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and is_image_file(p) and not (skip and p.resolve().is_relative_to(skip))
    )
    if not files:
        raise ValueError(f"images folder {str(source)!r} holds no image files (extensions png, jpg, bmp, tif, ...)")
    return files, source


def map_name(path: Path, root: Path) -> Path:
    """Relative PNG path of ``path``'s overlay: its path under ``root`` with the suffix kept (``a/b.jpg.png``)."""
    return path.relative_to(root).with_name(path.name + ".png")


def overlay(image: np.ndarray, anomaly_map: np.ndarray, low: float, high: float) -> np.ndarray:
    """``image`` (H, W, 3) ``uint8`` with ``anomaly_map`` stretched over it as a jet heat map.

    ``t = clip((map - low) / (high - low), 0, 1)`` sets colour and opacity (``0.6 t``).
    """
    height, width = image.shape[:2]
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(anomaly_map, dtype=np.float32)).resize((width, height)))
    t = np.clip((resized - low) / max(high - low, 1e-12), 0.0, 1.0)
    colour = colormaps["jet"](t)[..., :3] * 255.0
    alpha = 0.6 * t[..., None]
    return np.clip(image * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)


def _existing_results(output: Path) -> list[Path]:
    return [output / name for name in (SCORES_FILE, MAPS_DIR) if (output / name).exists()]


def check_output(output: str | Path, overwrite: bool) -> None:
    """``FileExistsError`` when ``output`` already holds results (scores.csv, maps/) and not ``overwrite``."""
    existing = _existing_results(Path(output))
    if existing and not overwrite:
        raise FileExistsError(
            f"output folder {str(output)!r} already holds {[p.name for p in existing]}; "
            "pass --overwrite (or choose another --output) to replace them"
        )


def prepare_output(output: str | Path) -> Path:
    """Create ``output`` and remove earlier results (scores.csv, maps/) from it."""
    output = Path(output)
    for path in _existing_results(output):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    output.mkdir(parents=True, exist_ok=True)
    return output


def score_to_folder(
    bundle: Bundle,
    files: list[Path],
    root: Path,
    output: Path,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """Score ``files`` and write one overlay PNG each under ``output/maps``; return the scores table.

    Columns :data:`COLUMNS`; ``decision`` is ``anomalous``/``normal`` at the bundle threshold,
    or ``error`` for an unreadable image, whose reason is in ``error`` (logged with its path).
    """
    errors: dict[str, str] = {}

    def unreadable(path: str, reason: str) -> None:
        logger.error("cannot read image %s: %s", path, reason)
        errors[path] = reason

    result = bundle.score_images(files, batch_size=batch_size, device=device, progress=progress, on_unreadable=unreadable)
    cal = bundle.meta.calibration
    maps_dir = output / MAPS_DIR
    rows = []
    for i, path in enumerate(tqdm(files, unit="img", desc="maps", disable=not progress)):
        error = errors.get(str(path), "")
        name = ""
        if not error:
            name = map_name(path, root)
            target = maps_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(overlay(load_rgb(path), result.maps[i], cal.median, cal.threshold)).save(target)
            name = (Path(MAPS_DIR) / name).as_posix()
        decision = "error" if error else ("anomalous" if result.decisions[i] else "normal")
        rows.append((str(path), result.scores[i], cal.normalise(result.scores[i : i + 1])[0], decision, name, error))
    return pd.DataFrame(rows, columns=list(COLUMNS))


@dataclasses.dataclass(frozen=True)
class InferenceParams:
    """The Kedro ``inference`` pipeline's settings (``inference``)."""

    bundle: str
    images: str
    output: str
    batch_size: int = 16
    device: str = "auto"

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"inference.batch_size={self.batch_size}: expected >= 1")


def score_source(
    params: InferenceParams, overwrite: bool = True, progress: bool = False
) -> tuple[Bundle, pd.DataFrame]:
    """Load ``params.bundle``, score ``params.images``, write the overlays under ``params.output``.

    Returns the bundle and the scores table (:func:`score_to_folder`); existing results
    in the output folder are replaced only with ``overwrite`` (checked before any work).
    """
    check_output(params.output, overwrite)
    bundle = load_bundle(params.bundle, device=params.device)
    files, root = collect_images(params.images, exclude=params.output)
    output = prepare_output(params.output)
    return bundle, score_to_folder(bundle, files, root, output, params.batch_size, params.device, progress)
