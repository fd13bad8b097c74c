"""Batched backbone feature extraction with a content-addressed on-disk cache.

Layout: ``<cache_dir>/<key>/<sha256 of the image file bytes>.npy`` holding one image's
``float16`` features ``(R, C, h, w)``, where ``key = <backbone>_<sha256(json(backbone,
layers, resolution, rotations, weights sha256))[:12]>``; ``<key>/manifest.json`` records
what the key stands for. View ``r`` is the image rotated counter-clockwise by
``rotations[r]`` degrees (as ``torch.rot90``, multiples of 90; see :func:`rotate`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from comet_pipeline.atomic import atomic_write
from comet_pipeline.data.images import load_rgb
from comet_pipeline.devices import resolve_device
from comet_pipeline.features.backbones import BackboneSpec, FeatureExtractor, sha256_file, verify_weights

logger = logging.getLogger(__name__)


def _check_rotations(rotations: Sequence[int]) -> tuple[int, ...]:
    """Validate rotation angles (degrees, multiples of 90, at least one)."""
    rotations = tuple(rotations)
    if not rotations or not all(isinstance(a, (int, np.integer)) and a % 90 == 0 for a in rotations):
        raise ValueError(f"rotations must be a non-empty sequence of multiples of 90 degrees; got {rotations!r}")
    return tuple(int(a) for a in rotations)


def cache_key(spec: BackboneSpec, rotations: Sequence[int], weights_sha256: str) -> tuple[str, dict]:
    """``(key, description)``: the key folder name and the JSON-able fields it hashes."""
    description = {
        "backbone": spec.name,
        "layers": list(spec.layers),
        "resolution": spec.resolution,
        "rotations": list(_check_rotations(rotations)),
        "weights_sha256": weights_sha256,
    }
    digest = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()
    return f"{spec.name}_{digest[:12]}", description


def load_resized(path: str | Path, resolution: int) -> Tensor:
    """Image ``path`` as RGB ``uint8`` tensor ``(3, S, S)``, resized (bilinear) to ``S = resolution``."""
    image = Image.fromarray(load_rgb(path)).resize((resolution, resolution), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1)))  # contiguous: cheap stack


def rotate(images: Tensor, angle: int) -> Tensor:
    """``torch.rot90(images, k=angle // 90, dims=(2, 3))`` written with flips and transposes.

    Same values as ``torch.rot90`` (counter-clockwise), but exportable to ONNX, which has no rot90.
    """
    k = (int(angle) // 90) % 4
    if k == 1:
        return images.flip(3).transpose(2, 3)
    if k == 2:
        return images.flip(2).flip(3)
    if k == 3:
        return images.transpose(2, 3).flip(3)
    return images


def rotation_views(images: Tensor, rotations: Sequence[int]) -> Tensor:
    """The ``R`` rotated views of ``images`` ``(B, 3, H, W)``, view-major: ``(R * B, 3, H, W)``."""
    views = [rotate(images, angle) for angle in rotations]
    return views[0] if len(views) == 1 else torch.cat(views)


class _ImageDataset(Dataset):
    """Images as ``uint8`` tensors ``(3, S, S)``, resized (bilinear) to the square resolution ``S``."""

    def __init__(self, paths: Sequence[str], resolution: int) -> None:
        self.paths = list(paths)
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, Tensor]:
        return index, load_resized(self.paths[index], self.resolution)


def _prefetched_batches(dataset: _ImageDataset, batch_size: int, threads: int) -> Iterator[tuple[Tensor, Tensor]]:
    """``(indices, uint8 images)`` batches in order, decoded by ``threads`` threads one batch ahead.

    PIL releases the GIL while decoding and resizing, so the threads decode images in
    parallel, and batch ``k + 1`` is read while the caller runs batch ``k`` (on a GPU the
    decode can overlap the forward pass); at most two batches are held in memory.
    """
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode") as pool:

        def submit(start: int) -> tuple[range, list[Future[tuple[int, Tensor]]]]:
            indices = range(start, min(start + batch_size, len(dataset)))
            return indices, [pool.submit(dataset.__getitem__, i) for i in indices]

        starts = range(0, len(dataset), batch_size)
        pending = submit(starts[0])
        for following in [*starts[1:], None]:
            indices, futures = pending
            if following is not None:
                pending = submit(following)
            yield torch.tensor(indices), torch.stack([future.result()[1] for future in futures])


@functools.lru_cache(maxsize=2)
def _extractor(spec: BackboneSpec, device: torch.device, weights_sha256: str) -> FeatureExtractor:
    """The frozen backbone on ``device``, built once per process for a (spec, device, weights) triple.

    A pipeline extracts one category split at a time; rebuilding (and re-reading the
    weights file) for each call costs ~0.3 s. ``weights_sha256`` is part of the key,
    so a weights file replaced on disk gets a fresh model.
    """
    extractor = FeatureExtractor(spec).to(device)
    if device.type == "cuda":
        extractor = extractor.to(memory_format=torch.channels_last)
    return extractor


def _compute(
    paths: Sequence[str],
    targets: Sequence[Path],
    spec: BackboneSpec,
    rotations: tuple[int, ...],
    batch_size: int,
    device: torch.device,
    num_workers: int,
    progress: bool,
    weights_sha256: str,
) -> None:
    """Run ``paths`` through the backbone and save each image's ``(R, C, h, w)`` features to ``targets``."""
    on_cuda = device.type == "cuda"
    extractor = _extractor(spec, device, weights_sha256)
    dataset = _ImageDataset(paths, spec.resolution)
    if num_workers > 0:
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, pin_memory=on_cuda)
    else:
        loader = _prefetched_batches(dataset, batch_size, threads=max(1, torch.get_num_threads()))
    n_views = len(rotations)
    with (
        torch.inference_mode(),
        torch.autocast(device_type=device.type, dtype=torch.float16, enabled=on_cuda),
        tqdm(total=len(paths), unit="img", desc=f"features {spec.name}", disable=not progress) as bar,
    ):
        for indices, images in loader:
            x = images.to(device, non_blocking=True).float().div_(255.0)
            views = rotation_views(x, rotations)
            if on_cuda:
                views = views.contiguous(memory_format=torch.channels_last)
            feats = extractor(views)  # (R * B, C, h, w), view-major
            feats = feats.unflatten(0, (n_views, len(indices))).transpose(0, 1)
            feats = feats.to(torch.float16).cpu().numpy()
            for row, index in enumerate(indices.tolist()):
                atomic_write(targets[index], lambda handle, a=feats[row]: np.save(handle, a))
            bar.update(len(indices))


def extract_features(
    paths: list[str],
    spec: BackboneSpec,
    rotations: tuple[int, ...] = (0,),
    cache_dir: str | Path = "data/04_feature/cache",
    batch_size: int = 32,
    device: str = "auto",
    num_workers: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Features of ``paths`` as ``float16`` array ``(N, R, C, h, w)`` in the order of ``paths``.

    Images are loaded as RGB, resized to ``spec.resolution`` squared, rotated by each angle
    in ``rotations`` and passed through the frozen backbone. Only images whose file hash is
    not yet cached under this key are computed (AMP fp16 + channels_last on CUDA).
    """
    if not paths:
        raise ValueError("paths is empty: extract_features needs at least one image path")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    rotations = _check_rotations(rotations)
    _, weights_sha256 = verify_weights(spec)
    key, description = cache_key(spec, rotations, weights_sha256)
    key_dir = Path(cache_dir) / key
    key_dir.mkdir(parents=True, exist_ok=True)
    manifest = key_dir / "manifest.json"
    if not manifest.exists():
        atomic_write(manifest, lambda handle: handle.write(json.dumps(description, indent=2).encode()))

    files = [key_dir / f"{sha256_file(path)}.npy" for path in paths]
    misses = {file: path for path, file in zip(paths, files) if not file.exists()}  # one run per content
    logger.info(
        "Feature cache %s: %d of %d images cached, %d to compute", key_dir, len(paths) - len(misses), len(paths), len(misses)
    )
    if misses:
        _compute(
            list(misses.values()),
            list(misses),
            spec,
            rotations,
            batch_size,
            resolve_device(device),
            num_workers,
            progress,
            weights_sha256,
        )

    out: np.ndarray | None = None
    for row, file in enumerate(files):
        try:
            array = np.load(file, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise RuntimeError(f"cached feature file {file} is unreadable ({err}); delete it to recompute") from err
        if out is None:
            out = np.empty((len(files), *array.shape), dtype=np.float16)
        if array.shape != out.shape[1:] or array.dtype != np.float16:
            raise RuntimeError(
                f"cached feature file {file} holds {array.dtype} {array.shape}, expected float16 {out.shape[1:]}; "
                "delete it to recompute"
            )
        out[row] = array
    return out
