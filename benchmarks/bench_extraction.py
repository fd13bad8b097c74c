"""Throughput of ``extract_features`` (decode + backbone + cache writes) vs the raw backbone.

Writes random-noise PNGs (incompressible: the slowest case to decode) to a temporary
folder, or with ``--images-from DIR`` takes the first ``--images`` images found under
``DIR`` (e.g. the built-in data), then, on the same device, ``--repeats`` times in a row:

1. raw: ``FeatureExtractor.forward`` on already-decoded tensors (batches of ``--batch-size``);
2. uncached: ``extract_features`` into an empty cache (hashing, decoding, writes);
3. cached: ``extract_features`` again (all hits).

The ratio raw / uncached seconds is taken within each repeat, so a slow spell on a
shared machine hits both sides; the median over repeats is the figure, the min and max
are printed beside it. The process builds the backbone once (``cache._extractor``), so
repeats after the first are the steady state of a pipeline that extracts several
splits; the first uncached run (backbone build and weights read included) is printed too.

Run: ``python benchmarks/bench_extraction.py [--images 128] [--repeats 5] [--device auto]
[--images-from data/01_raw/builtin]``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from comet_pipeline.data.images import is_image_file
from comet_pipeline.devices import resolve_device
from comet_pipeline.features.backbones import BackboneSpec, FeatureExtractor
from comet_pipeline.features.cache import _extractor, _ImageDataset, extract_features


def _write_noise_pngs(folder: Path, count: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"noise_{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _first_images(folder: Path, count: int) -> list[str]:
    """The first ``count`` image files under ``folder`` (sorted paths, masks excluded)."""
    paths = sorted(
        str(p) for p in folder.rglob("*") if is_image_file(p) and "ground_truth" not in p.parts
    )[:count]
    if not paths:
        raise SystemExit(f"--images-from {folder}: no image files found")
    return paths


def _raw_backbone_seconds(paths: list[str], spec: BackboneSpec, batch_size: int, device: torch.device) -> float:
    """Seconds of the backbone forward alone over pre-decoded images (after one warm-up batch)."""
    dataset = _ImageDataset(paths, spec.resolution)
    images = torch.stack([dataset[i][1] for i in range(len(dataset))]).to(device).float().div_(255.0)
    extractor = FeatureExtractor(spec).to(device)
    on_cuda = device.type == "cuda"
    if on_cuda:
        extractor = extractor.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.float16) if on_cuda else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        extractor(images[:batch_size])
        if on_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, len(images), batch_size):
            extractor(images[i : i + batch_size]).cpu()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images-from", type=Path, default=None, help="folder of images to use instead of noise")
    args = parser.parse_args()

    device = resolve_device(args.device)
    spec = BackboneSpec(resolution=args.resolution)
    timings: dict[str, list[float]] = {"raw": [], "uncached": [], "cached": []}
    with tempfile.TemporaryDirectory() as tmp:
        if args.images_from is None:
            paths = _write_noise_pngs(Path(tmp), args.images, args.image_size)
            source = f"noise {args.image_size}px"
        else:
            paths = _first_images(args.images_from, args.images)
            source = f"{len(paths)} images from {args.images_from}"
        for repeat in range(args.repeats):
            timings["raw"].append(_raw_backbone_seconds(paths, spec, args.batch_size, device))
            if repeat == 0:
                _extractor.cache_clear()  # the raw timing built its own model; start the pipeline path cold
            for run in ("uncached", "cached"):
                start = time.perf_counter()
                extract_features(
                    paths,
                    spec,
                    cache_dir=Path(tmp) / f"cache{repeat}",
                    batch_size=args.batch_size,
                    device=str(device),
                    num_workers=args.num_workers,
                    progress=False,
                )
                timings[run].append(time.perf_counter() - start)

    n = len(paths)
    raw, uncached, cached = (statistics.median(timings[run]) for run in ("raw", "uncached", "cached"))
    ratios = [r / u for r, u in zip(timings["raw"], timings["uncached"])]
    steady = ratios[1:] or ratios
    first = timings["uncached"][0]
    print(f"device={device} threads={torch.get_num_threads()} images={n} ({source}) -> {args.resolution}px, "
          f"batch {args.batch_size}, workers {args.num_workers}, {args.repeats} repeats (medians)")
    print(f"raw backbone forward   : {n / raw:8.1f} img/s ({raw:.2f} s)")
    print(f"extract_features (miss): {n / uncached:8.1f} img/s ({uncached:.2f} s)")
    print(f"ratio extract / raw    : {statistics.median(steady):8.2f}x (min {min(steady):.2f}, max {max(steady):.2f}; "
          "target >= 0.9x)")
    print(f"first call (cold)      : {n / first:8.1f} img/s ({first:.2f} s, backbone build included; "
          f"{ratios[0]:.2f}x raw)")
    print(f"extract_features (hit) : {n / cached:8.1f} img/s ({cached:.2f} s)")


if __name__ == "__main__":
    main()
