"""Dataset readers: folder layouts -> (sample table, ingestion report).

Every file found in a class folder is accounted for: it becomes a sample row or a
row of the ingestion report (columns ``path, problem``). With ``on_error="fail"``
the first unusable file (corrupt/empty/non-image file, bad mask) raises; with
``"skip"`` it is reported and left out. Remarks that do not make a file unusable
(a defective image without its mask, a mask without an image, an unexpected
folder) are reported in both modes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from comet_pipeline.data.images import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    image_size,
    is_image_file,
    load_mask,
)
from comet_pipeline.data.schema import NOMINAL, make_table, validate_table

logger = logging.getLogger(__name__)

ON_ERROR_CHOICES: tuple[str, ...] = ("fail", "skip")
LAYOUTS: tuple[str, ...] = ("mvtec", "ksdd2")
REPORT_COLUMNS: tuple[str, ...] = ("path", "problem")
MVTEC_LAYOUT = """\
<root>/
  <category>/
    train/good/<images>
    test/good/<images>
    test/<defect>/<images>
    ground_truth/<defect>/<stem>_mask.png   (optional)"""
KSDD2_LAYOUT = """\
<root>/
  train/<name>.png, train/<name>_GT.png
  test/<name>.png,  test/<name>_GT.png"""
KSDD2_MASK_SUFFIX = "_GT"
MVTEC_MASK_SUFFIX = "_mask"
KSDD2_DEFECT = "defect"


class _Ingestion:
    """Collects report rows; raises in fail mode for unusable files."""

    def __init__(self, source: str, on_error: str) -> None:
        if on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error={on_error!r} is not valid; expected one of {ON_ERROR_CHOICES}")
        self.source = source
        self.on_error = on_error
        self.rows: list[dict[str, str]] = []
        self.n_skipped = 0

    def unusable(self, path: Path, error: Exception) -> None:
        """A file that cannot be used: raise (fail mode) or report it (skip mode)."""
        if self.on_error == "fail":
            raise error
        self.rows.append({"path": str(path), "problem": str(error)})
        self.n_skipped += 1

    def note(self, path: Path, problem: str) -> None:
        """A remark that does not make a file unusable; reported in both modes."""
        self.rows.append({"path": str(path), "problem": problem})

    def report(self) -> pd.DataFrame:
        """The ingestion report; logs a warning with the counts."""
        if self.n_skipped:
            logger.warning("%s: skipped %d unusable file(s); see the ingestion report", self.source, self.n_skipped)
        n_notes = len(self.rows) - self.n_skipped
        if n_notes:
            logger.warning("%s: %d ingestion remark(s); see the ingestion report", self.source, n_notes)
        return pd.DataFrame(self.rows, columns=list(REPORT_COLUMNS)).astype("string")


def _require_dir(path: Path, what: str, layout: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a folder; expected layout:\n{layout}")


def _list_images(folder: Path, log: _Ingestion) -> dict[str, Path]:
    """Image files of a class folder by stem; other entries are reported."""
    images: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            log.note(entry, f"unexpected sub-folder inside class folder {folder}; not read")
        elif not is_image_file(entry):
            log.unusable(
                entry,
                ValueError(
                    f"{entry} is not an image file (expected extensions {sorted(IMAGE_EXTENSIONS)}, "
                    f"case-insensitive) in class folder {folder}"
                ),
            )
        elif entry.stem in images:
            log.unusable(
                entry,
                ValueError(f"{entry} has the same file stem as {images[entry.stem]}; sample ids would collide"),
            )
        else:
            images[entry.stem] = entry
    return images


def _readable_size(path: Path, log: _Ingestion) -> tuple[int, int] | None:
    """(height, width) after a full decode, or None (reported) when unreadable."""
    try:
        return image_size(path)
    except ImageReadError as err:
        log.unusable(path, err)
        return None


def _checked_mask(mask_path: Path, size: tuple[int, int], image_path: Path, log: _Ingestion) -> np.ndarray | None:
    """The decoded mask, or None when unusable: the error is reported under the image's path."""
    try:
        return load_mask(mask_path, expected_size=size, image_path=image_path)
    except ValueError as err:  # includes ImageReadError
        log.unusable(image_path, err)
        return None


def _row(category: str, split: str, defect_type: str, path: Path, mask_path: Path | None, label: int) -> dict:
    return {
        "sample_id": f"{category}/{split}/{defect_type}/{path.stem}",
        "path": str(path.resolve()),
        "category": category,
        "split": split,
        "label": label,
        "defect_type": defect_type,
        "mask_path": str(mask_path.resolve()) if mask_path is not None else "",
        "injected": False,
    }


def _mvtec_masks(gt_dir: Path, log: _Ingestion) -> dict[str, dict[str, Path]]:
    """``ground_truth/<defect>/<stem>_mask.*`` indexed as {defect: {image stem: mask path}}."""
    masks: dict[str, dict[str, Path]] = {}
    if not gt_dir.is_dir():
        return masks
    for entry in sorted(gt_dir.iterdir()):
        if not entry.is_dir():
            log.note(entry, f"file directly in {gt_dir} (masks belong in ground_truth/<defect>/); not read")
            continue
        masks[entry.name] = {}
        for stem, path in _list_images(entry, log).items():
            if stem.endswith(MVTEC_MASK_SUFFIX):
                masks[entry.name][stem[: -len(MVTEC_MASK_SUFFIX)]] = path
            else:
                log.note(path, f"mask file name should be <image stem>{MVTEC_MASK_SUFFIX}.png; not read")
    return masks


def read_mvtec(root: str | Path, category: str, on_error: str = "fail") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one category of an MVTec-AD-style folder (also VisA/VIADUCT converted to it).

    Returns ``(sample table, ingestion report)``. Each image is fully decoded to
    check it; masks must have their image's size. Without ``ground_truth/`` the
    masks are ``""``. A defective test image without mask (while ``ground_truth/``
    exists) is kept with ``mask_path=""`` and reported. A missing root, category,
    ``train/good`` or ``test`` folder raises FileNotFoundError showing the layout.
    """
    root = Path(root)
    _require_dir(root, "dataset root", MVTEC_LAYOUT)
    base = root / category
    if not base.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"category folder {base} does not exist (folders in {root}: {found}); expected layout:\n{MVTEC_LAYOUT}"
        )
    log = _Ingestion(f"{root} [{category}]", on_error)
    train_dir = base / "train" / NOMINAL
    _require_dir(train_dir, "training folder", MVTEC_LAYOUT)
    for entry in sorted((base / "train").iterdir()):
        if entry != train_dir:
            log.note(entry, f"only {train_dir} is read for training; this entry is not read")
    train_images = _list_images(train_dir, log)
    if not train_images:
        raise ValueError(f"empty training set: no image files in {train_dir}; expected layout:\n{MVTEC_LAYOUT}")

    rows = [
        _row(category, "train", NOMINAL, path, None, 0)
        for path in train_images.values()
        if _readable_size(path, log) is not None
    ]
    if not rows:
        raise ValueError(f"empty training set: none of the {len(train_images)} images in {train_dir} is readable")

    test_dir = base / "test"
    _require_dir(test_dir, "test folder", MVTEC_LAYOUT)
    gt_dir = base / "ground_truth"
    masks = _mvtec_masks(gt_dir, log)
    for defect_dir in sorted(test_dir.iterdir()):
        if not defect_dir.is_dir():
            log.note(defect_dir, f"file directly in {test_dir} (images belong in test/<defect>/); not read")
            continue
        defect = defect_dir.name
        defect_masks = masks.get(defect, {})
        for stem, path in _list_images(defect_dir, log).items():
            size = _readable_size(path, log)
            if size is None:
                continue
            mask_path = defect_masks.pop(stem, None)
            if mask_path is not None and _checked_mask(mask_path, size, path, log) is None:
                continue
            if mask_path is None and defect != NOMINAL and gt_dir.is_dir():
                log.note(
                    path,
                    f"defective image without mask (expected {gt_dir / defect / (stem + MVTEC_MASK_SUFFIX)}.png);"
                    " kept with mask_path ''",
                )
            rows.append(_row(category, "test", defect, path, mask_path, int(defect != NOMINAL)))
    for defect, orphans in masks.items():
        for mask_path in orphans.values():
            log.note(mask_path, f"mask without a matching image in {test_dir / defect}; not used")

    table = make_table(rows)
    logger.info(
        "%s: %d train and %d test images", log.source, (table["split"] == "train").sum(), (table["split"] == "test").sum()
    )
    return validate_table(table), log.report()


def read_ksdd2(root: str | Path, category: str = "ksdd2", on_error: str = "fail") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a KSDD2 folder: ``<root>/{train,test}/<name>.png`` with masks ``<name>_GT.png``.

    ``label`` is 1 when the mask has a positive pixel (defect_type ``"defect"``),
    else 0 (``"good"``); defective training images stay in train (KSDD2 ships them).
    An image without its ``_GT`` mask is unusable (its label is unknown).
    """
    root = Path(root)
    _require_dir(root, "KSDD2 root", KSDD2_LAYOUT)
    log = _Ingestion(f"{root} [{category}]", on_error)
    rows: list[dict] = []
    for split in ("train", "test"):
        split_dir = root / split
        _require_dir(split_dir, f"KSDD2 {split} folder", KSDD2_LAYOUT)
        files = _list_images(split_dir, log)
        masks = {s[: -len(KSDD2_MASK_SUFFIX)]: p for s, p in files.items() if s.endswith(KSDD2_MASK_SUFFIX)}
        images = {s: p for s, p in files.items() if not s.endswith(KSDD2_MASK_SUFFIX)}
        if split == "train" and not images:
            raise ValueError(f"empty training set: no image files in {split_dir}; expected layout:\n{KSDD2_LAYOUT}")
        for stem, path in images.items():
            mask_path = masks.pop(stem, None)
            if mask_path is None:
                log.unusable(
                    path,
                    ValueError(f"{path} has no mask {split_dir / (stem + KSDD2_MASK_SUFFIX)}.png; its label is unknown"),
                )
                continue
            size = _readable_size(path, log)
            mask = None if size is None else _checked_mask(mask_path, size, path, log)
            if mask is None:
                continue
            label = int(mask.any())
            rows.append(_row(category, split, KSDD2_DEFECT if label else NOMINAL, path, mask_path, label))
        for mask_path in masks.values():
            log.note(mask_path, f"mask without a matching image in {split_dir}; not used")
    if not any(row["split"] == "train" for row in rows):
        raise ValueError(f"empty training set: no usable image in {root / 'train'}")
    return validate_table(make_table(rows)), log.report()


def read_dataset(
    root: str | Path, categories: list[str], layout: str = "mvtec", on_error: str = "fail"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``categories`` of the dataset at ``root``; concatenated (sample table, ingestion report)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not known; valid layouts: {list(LAYOUTS)}")
    if isinstance(categories, str) or not categories:
        raise ValueError(f"categories must be a non-empty list of category names; got {categories!r}")
    if len(set(categories)) != len(categories):
        raise ValueError(f"categories contains duplicates: {categories}")
    if layout == "ksdd2":
        if len(categories) != 1:
            raise ValueError(
                f"layout 'ksdd2' has a single category (the folder {root} itself); got categories={categories}"
            )
        results = [read_ksdd2(root, categories[0], on_error)]
    else:
        results = [read_mvtec(root, category, on_error) for category in categories]
    tables, reports = zip(*results)
    return validate_table(pd.concat(tables, ignore_index=True)), pd.concat(reports, ignore_index=True)
