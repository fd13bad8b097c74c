"""Bundles: save/load identity, metadata, model card, and clear errors for broken bundles."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from comet_pipeline import __version__
from comet_pipeline.bundle import CARD_FILE, META_FILE, MODEL_FILE, Bundle, BundleError, load_bundle
from comet_pipeline.data.images import ImageReadError
from comet_pipeline.features.cache import extract_features
from comet_pipeline.training.trainer import anomaly_maps, score_features

from .conftest import make_meta, tiny_model


@pytest.fixture(scope="module")
def cached_features(image_paths, tmp_path_factory) -> np.ndarray:
    """Features of the test images through the training path (extract_features and its float16 cache)."""
    bb = make_meta().backbone
    paths = [str(p) for p in image_paths]
    return extract_features(paths, bb.spec(), bb.rotations, tmp_path_factory.mktemp("cache"), progress=False)


def test_scores_match_the_training_feature_path(bundle, image_paths, cached_features):
    result = bundle.score_images(image_paths, batch_size=3)
    features = cached_features if bundle.model.multi_view else cached_features[:, :1]
    np.testing.assert_allclose(result.scores, score_features(bundle.model, features), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.maps, anomaly_maps(bundle.model, features, (32, 32)), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(result.decisions, result.scores >= bundle.meta.calibration.threshold)


def test_reloaded_bundle_gives_identical_scores_and_metadata(bundle, image_paths):
    assert bundle.meta == dataclasses.replace(make_meta(), created_at=bundle.meta.created_at, package_version=__version__)
    original = Bundle(bundle.path, tiny_model(bundle.model.name), bundle.extractor, bundle.meta)
    np.testing.assert_array_equal(original.score_images(image_paths[:3]).scores, bundle.score_images(image_paths[:3]).scores)
    document = json.loads((bundle.path / META_FILE).read_text())
    assert document["model"]["name"] == bundle.model.name
    assert document["meta"]["backbone"]["weights_sha256"] == bundle.meta.backbone.weights_sha256
    assert document["meta"]["package_version"] and document["meta"]["created_at"]
    card = (bundle.path / CARD_FILE).read_text()
    for text in ("Intended use", "contamination", "Decision threshold", "i_auroc", "How to score"):
        assert text in card


def test_unreadable_image_is_named_or_reported(bundle, image_paths, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="broken.png"):
        bundle.score_images([image_paths[0], broken])
    seen = []
    result = bundle.score_images([image_paths[0], broken], on_unreadable=lambda p, r: seen.append(p))
    assert seen == [str(broken)] and np.isnan(result.scores[1]) and not result.decisions[1]
    assert np.isfinite(result.scores[0])


@pytest.fixture()
def copy_of(bundle, tmp_path) -> Path:
    return Path(shutil.copytree(bundle.path, tmp_path / "copy"))


def test_missing_directory_and_files(tmp_path, copy_of):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")
    (copy_of / MODEL_FILE).unlink()
    with pytest.raises(BundleError, match="has no model.pt"):
        load_bundle(copy_of)


def test_corrupt_files(copy_of):
    (copy_of / META_FILE).write_text("{ not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(copy_of)


def test_changed_model_file(copy_of):
    (copy_of / MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(BundleError, match="changed or is corrupt"):
        load_bundle(copy_of)


def test_backbone_checksum_mismatch(copy_of):
    document = json.loads((copy_of / META_FILE).read_text())
    document["meta"]["backbone"]["weights_sha256"] = "0" * 64
    (copy_of / META_FILE).write_text(json.dumps(document))
    with pytest.raises(BundleError, match="weights SHA-256 0000"):
        load_bundle(copy_of)
