"""Checkpoints: atomic, safe to load, and a killed run resumes to the uninterrupted result bit for bit."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from comet_pipeline.models import build_model, load_model, save_model
from comet_pipeline.pipelines import training_nodes
from comet_pipeline.training.trainer import (
    CHECKPOINT_FILE,
    CheckpointError,
    CoMetConfig,
    TrainConfig,
    load_checkpoint,
    train,
)

from reliability_helpers import tiny_category

SCRIPT = Path(__file__).with_name("resume_script.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    features = tmp_path / "features.npy"
    np.save(features, np.random.default_rng(0).normal(size=(24, 1, 8, 4, 4)).astype(np.float16))
    folder = tmp_path / "checkpoints"

    killed = _script("interrupt", str(features), str(folder), "-", "2")
    assert killed.returncode == 75, killed.stderr
    assert load_checkpoint(folder / CHECKPOINT_FILE)["epoch"] == 2
    assert [p.name for p in folder.iterdir()] == [CHECKPOINT_FILE]  # no temporary file left behind

    done = _script("resume", str(features), str(folder), str(tmp_path / "out.pt"))
    assert done.returncode == 0, done.stderr
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert out["resumed_epochs"] == [3, 4]  # epochs 1-2 were not run again
    resumed, reference = out["resumed"], out["reference"]
    assert resumed["state"].keys() == reference["state"].keys()
    for name, tensor in reference["state"].items():
        assert torch.equal(resumed["state"][name], tensor), name
    assert resumed["history"] == reference["history"]
    for key in ("weights", "final_weights", "scores"):
        assert torch.equal(resumed[key], reference[key]), key


class Centre(nn.Module):
    name = "centre"

    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(8))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return ((features - self.mu.view(1, 1, 8, 1, 1)) ** 2).flatten(1).mean(1)

    score = forward


def _train(folder: Path | None, **kwargs) -> object:
    data = tiny_category()
    settings = {"epochs": 3, "batch_size": 6, "lr": 0.05, "device": "cpu"} | kwargs
    config = TrainConfig(**settings, checkpoint_dir=None if folder is None else str(folder))
    comet = CoMetConfig(confidence_weighting=True, covariance_regularization=True, warmup_epochs=1, window=3)
    return train(Centre(), data.train_features, data.train["sample_id"].tolist(), config, comet, progress=False)


def test_checkpoint_of_another_configuration_is_ignored_with_a_warning(tmp_path: Path, caplog) -> None:
    _train(tmp_path, lr=0.01)
    (tmp_path / f"{CHECKPOINT_FILE}.tmp999").write_bytes(b"half-written")  # a write killed midway: never read
    with caplog.at_level(logging.WARNING, logger="comet_pipeline.training.trainer"):
        fresh = _train(tmp_path)
    assert any("belongs to another configuration" in r.getMessage() for r in caplog.records)
    reference = _train(None)
    assert torch.equal(fresh.model.mu, reference.model.mu)
    # the finished run's checkpoint now matches: a repeat returns the same model without training
    with caplog.at_level(logging.INFO, logger="comet_pipeline.training.trainer"):
        again = _train(tmp_path)
    assert any("resuming from" in r.getMessage() and "after epoch 3/3" in r.getMessage() for r in caplog.records)
    assert torch.equal(again.model.mu, reference.model.mu)
    pd.testing.assert_frame_equal(again.weights, reference.weights)


class _Payload:
    """Unpickling this creates ``marker``: stands for arbitrary code in a pickled object."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_objects_in_checkpoint_and_model_files_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"
    assert pickle.loads(pickle.dumps(_Payload(tmp_path / "proof"))) and (tmp_path / "proof").exists()  # it is live

    folder = tmp_path / "run"
    folder.mkdir()
    torch.save({"format": 1, "fingerprint": "x", "payload": _Payload(marker)}, folder / CHECKPOINT_FILE)
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.pt: refused: it holds objects other than"):
        _train(folder)
    assert not marker.exists()

    (folder / CHECKPOINT_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="unreadable or corrupt"):
        _train(folder)
    torch.save({"format": 99}, folder / CHECKPOINT_FILE)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        _train(folder)

    model_file = tmp_path / "model.pt"
    save_model(build_model("simplenet", in_channels=4, hidden=8), model_file)
    assert load_model(model_file).in_channels == 4
    bundle = torch.load(model_file, weights_only=True)
    torch.save({**bundle, "config": _Payload(marker)}, model_file)
    with pytest.raises(ValueError, match=rf"model file '{model_file}'"):
        load_model(model_file)
    assert not marker.exists()


def test_every_torch_load_in_the_package_uses_weights_only() -> None:
    offenders = []
    for file in sorted(SRC.rglob("*.py")):
        text = file.read_text()
        for lineno, line in enumerate(text.splitlines(), 1):
            code = line.split("#")[0]
            if "torch.load(" in code and "weights_only=True" not in code:
                offenders.append(f"{file}:{lineno}")
            if "allow_pickle=True" in code or "pickle.load(" in code or "pickle.loads(" in code:
                offenders.append(f"{file}:{lineno}")
    assert not offenders, offenders


def test_training_node_checkpoints_one_folder_per_category_and_model(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training_nodes, "load_category", lambda manifest, category, params: tiny_category())
    train_params = {
        "models": ["simplenet"],
        "checkpoints": True,
        "simplenet": {"model": {"hidden": 8}, "optim": {"epochs": 2, "batch_size": 8, "device": "cpu"}},
    }
    index = pd.DataFrame({"category": ["cat"]})
    models, history, _, _ = training_nodes.train_models(None, index, {}, train_params, {"warmup_epochs": 0})
    checkpoint = tmp_path / "data/06_models/checkpoints/comet/cat__simplenet" / CHECKPOINT_FILE
    assert load_checkpoint(checkpoint)["epoch"] == 2
    assert not (tmp_path / "data/06_models/checkpoints/baseline").exists()
    with caplog.at_level(logging.INFO, logger="comet_pipeline.training.trainer"):
        again, _, _, _ = training_nodes.train_models(None, index, {}, train_params, {"warmup_epochs": 0})
    assert any("resuming from" in r.getMessage() for r in caplog.records)
    for name, tensor in models["cat__simplenet"].state_dict().items():
        assert torch.equal(again["cat__simplenet"].state_dict()[name], tensor), name
