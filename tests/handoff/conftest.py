"""Tiny bundles (random-init detectors, MobileNetV2 at 64 px) and tiny generated images, shared per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from comet_pipeline.bundle import BackboneIdentity, Bundle, BundleMeta, Calibration, load_bundle, save_bundle
from comet_pipeline.config import FeatureParams, ThresholdParams
from comet_pipeline.data.images import is_image_file
from comet_pipeline.data.synthetic import generate_dataset
from comet_pipeline.models import build_model
from comet_pipeline.models.base import AnomalyModel

TINY_MODELS = {"flow": {"n_blocks": 2, "hidden": 16, "grid": 4}, "simplenet": {"hidden": 16}}


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The brick test folder of a tiny generated dataset (2 good + 1 per defect type, 64 px)."""
    root = generate_dataset(
        tmp_path_factory.mktemp("data"), categories=("brick",), n_train=6, n_test_good=2, n_test_defect_per_type=1,
        image_size=64,
    )
    return root / "brick" / "test"


@pytest.fixture(scope="session")
def image_paths(images_dir: Path) -> list[Path]:
    return sorted(p for p in images_dir.rglob("*") if is_image_file(p))


def make_meta() -> BundleMeta:
    backbone = BackboneIdentity.from_params(FeatureParams(resolution=64, rotations=(0, 180)))
    train_scores = pd.DataFrame({"role": ["train"] * 4 + ["val"] * 4, "score": np.linspace(0.2, 0.5, 8)})
    calibration = Calibration.from_train_scores(train_scores, ThresholdParams())
    return BundleMeta("brick", "comet", backbone, calibration, map_size=32, contamination_ratio=0.1,
                      n_train_images=8, n_injected=1, comet={"confidence_weighting": True}, metrics={"i_auroc": 0.9})


def tiny_model(name: str) -> AnomalyModel:
    """The random-init detector every bundle here holds (seeded: rebuilt identically)."""
    torch.manual_seed(0)
    return build_model(name, in_channels=128, **TINY_MODELS[name]).eval()


@pytest.fixture(scope="session")
def bundle_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved tiny bundles ``comet__brick__<model>``, by model name."""
    root = tmp_path_factory.mktemp("bundles")
    return {name: save_bundle(root / f"comet__brick__{name}", tiny_model(name), make_meta()) for name in TINY_MODELS}


@pytest.fixture(scope="session", params=sorted(TINY_MODELS))
def bundle(request: pytest.FixtureRequest, bundle_dirs: dict[str, Path]) -> Bundle:
    """A loaded tiny bundle, once per model type."""
    return load_bundle(bundle_dirs[request.param])
