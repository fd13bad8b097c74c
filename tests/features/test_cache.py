"""Feature cache: shapes, hits without recomputation, key changes, rotations, devices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comet_pipeline.data.images import ImageReadError
from comet_pipeline.devices import resolve_device
from comet_pipeline.features import cache
from comet_pipeline.features.backbones import BackboneSpec, FeatureExtractor

SPEC = BackboneSpec(resolution=64)


@pytest.fixture()
def images(tmp_path) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture()
def forward_calls(monkeypatch) -> list[int]:
    """Count images passed through FeatureExtractor.forward."""
    calls: list[int] = []
    original = FeatureExtractor.forward

    def counting(self, images):
        calls.append(images.shape[0])
        return original(self, images)

    monkeypatch.setattr(FeatureExtractor, "forward", counting)
    return calls


def _extract(paths, tmp_path, **kwargs) -> np.ndarray:
    kwargs.setdefault("spec", SPEC)
    return cache.extract_features(paths, cache_dir=tmp_path / "cache", batch_size=2, device="cpu", progress=False, **kwargs)


def test_second_call_hits_cache(images, tmp_path, forward_calls):
    first = _extract(images, tmp_path)
    assert first.dtype == np.float16 and first.shape == (3, 1, 128, 8, 8)
    assert sum(forward_calls) == 3
    forward_calls.clear()
    second = _extract(images[::-1], tmp_path)
    assert forward_calls == []  # the backbone is not even built
    np.testing.assert_array_equal(second, first[::-1])
    (key_dir,) = (tmp_path / "cache").iterdir()
    manifest = json.loads((key_dir / "manifest.json").read_text())
    assert manifest["layers"] == list(SPEC.layers) and manifest["rotations"] == [0]
    assert len(list(key_dir.glob("*.npy"))) == 3 and not list(key_dir.glob("*.tmp"))


def test_partial_hits_compute_only_misses(images, tmp_path, forward_calls):
    _extract(images[:1], tmp_path)
    forward_calls.clear()
    _extract(images, tmp_path)
    assert sum(forward_calls) == 2


def test_key_depends_on_resolution_and_rotations():
    sha = "b0353104" + "0" * 56
    key = cache.cache_key(SPEC, (0,), sha)[0]
    assert key != cache.cache_key(BackboneSpec(resolution=96), (0,), sha)[0]
    assert key != cache.cache_key(SPEC, (0, 90), sha)[0]
    assert key == cache.cache_key(BackboneSpec(resolution=64), [0], sha)[0]


def test_rotations_give_views_of_rotated_images(images, tmp_path):
    feats = _extract(images[:1], tmp_path, rotations=(0, 90))
    assert feats.shape == (1, 2, 128, 8, 8)
    rotated = tmp_path / "rotated.png"
    Image.open(images[0]).rotate(90).save(rotated)  # PIL rotates counter-clockwise, like torch.rot90(k=1)
    np.testing.assert_allclose(
        _extract([str(rotated)], tmp_path)[0, 0].astype(np.float32), feats[0, 1].astype(np.float32), atol=1e-2
    )


def test_invalid_arguments(images, tmp_path):
    with pytest.raises(ValueError, match="rotations"):
        _extract(images, tmp_path, rotations=(45,))
    with pytest.raises(ValueError, match="paths"):
        _extract([], tmp_path)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ValueError, match="auto"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            resolve_device("cuda")


@pytest.mark.parametrize("num_workers", [0, 1])
def test_features_match_the_backbone_in_input_order(images, tmp_path, num_workers):
    """Batches of 2 over 3 images (one short batch): decoding threads or DataLoader workers keep the order."""
    feats = _extract(images[::-1], tmp_path, num_workers=num_workers)
    decoded = torch.stack([cache.load_resized(path, SPEC.resolution) for path in images[::-1]]).float() / 255.0
    with torch.inference_mode():
        expected = FeatureExtractor(SPEC)(decoded).numpy()
    # batches of 2 vs 3 round differently (float16 storage: ~1e-3); other images differ by ~1
    np.testing.assert_allclose(feats[:, 0].astype(np.float32), expected, atol=5e-3)
    assert np.abs(feats[0, 0].astype(np.float32) - expected[1]).max() > 0.1
    np.testing.assert_array_equal(_extract(images[::-1], tmp_path), feats)  # read back from the cache: the same


def test_unreadable_image_is_named(images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(Path(images[0]).read_bytes()[:100])
    with pytest.raises(ImageReadError, match="broken.png"):
        _extract([*images, str(broken)], tmp_path)
