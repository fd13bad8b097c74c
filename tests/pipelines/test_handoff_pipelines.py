"""The export pipeline packages every trained model as a bundle; inference scores a folder with one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

#: one category, one model, one epoch: the export/inference wiring is what is tested here
SMALL = {
    "data": {"categories": ["brick"]},
    "train": {"models": ["flow"], "flow": {"optim": {"epochs": 1}}},
    "inference": {"bundle": "data/06_models/bundles/comet__brick__flow", "images": "data/01_raw/builtin/brick/test/good"},
}


def test_export_then_inference(kedro_project):
    kedro_project(["data_ingestion", "feature_extraction", "train_baseline", "train_comet", "evaluation", "export"], SMALL)
    bundles = sorted(p.name for p in Path("data/06_models/bundles").iterdir())
    assert bundles == ["baseline__brick__flow", "comet__brick__flow"]
    meta = json.loads(Path("data/06_models/bundles/comet__brick__flow/bundle.json").read_text())["meta"]
    assert meta["contamination_ratio"] == 0.2 and meta["n_injected"] == 2
    assert meta["comet"]["meta_learning"] and "i_auroc" in meta["metrics"]
    assert meta["backbone"]["resolution"] == 64 and meta["backbone"]["rotations"] == [0, 180]
    kedro_project(["inference"], SMALL)  # reads the bundle folder from parameters, so it runs after export
    scores = pd.read_csv("data/07_model_output/inference/scores.csv")
    assert len(scores) == 3 and set(scores["decision"]) <= {"anomalous", "normal"}
    assert len(list(Path("data/07_model_output/inference/maps").rglob("*.png"))) == 3
