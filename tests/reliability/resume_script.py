"""Run by test_checkpoint_resume.py in fresh processes: train, get killed after a checkpoint, resume.

usage: resume_script.py interrupt FEATURES.npy CHECKPOINT_DIR - EPOCH
       resume_script.py resume    FEATURES.npy CHECKPOINT_DIR OUT.pt
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

import comet_pipeline.training.trainer as trainer
from comet_pipeline.models import build_model

torch.set_num_threads(1)
mode, features_path, checkpoint_dir, out = sys.argv[1:5]
features = np.load(features_path)
ids = [f"s{i:03d}" for i in range(len(features))]
comet = trainer.CoMetConfig(
    confidence_weighting=True, covariance_regularization=True, meta_learning=True,
    warmup_epochs=1, window=3, inner_lr=0.01, lambda0=1e-3,
)
saved_epochs: list[int] = []
original_save = trainer._save_checkpoint


def save(path, state) -> None:
    original_save(path, state)
    saved_epochs.append(state["epoch"])
    if mode == "interrupt" and state["epoch"] == int(sys.argv[5]):
        os._exit(75)  # killed right after this epoch's checkpoint: nothing else is written


trainer._save_checkpoint = save


def run(folder: str | None) -> trainer.TrainResult:
    torch.manual_seed(0)
    model = build_model("simplenet", in_channels=features.shape[2], hidden=16)  # draws noise from the global RNG
    config = trainer.TrainConfig(epochs=4, batch_size=6, lr=2e-3, device="cpu", checkpoint_dir=folder)
    return trainer.train(model, features, ids, config, comet, progress=False)


def summary(result: trainer.TrainResult) -> dict:
    history = result.history.drop(columns="seconds")
    return {
        "state": result.model.state_dict(),
        "history": {c: history[c].tolist() for c in history.columns},
        "weights": torch.as_tensor(result.weights["weight"].to_numpy()),
        "final_weights": torch.as_tensor(result.final_weights.to_numpy()),
        "scores": torch.as_tensor(np.concatenate([result.train_scores, result.val_scores])),
    }


if mode == "interrupt":
    run(checkpoint_dir)
    sys.exit(1)  # not reached: the process ends inside the checkpoint of epoch EPOCH
resumed = summary(run(checkpoint_dir))
resumed_epochs = list(saved_epochs)
reference = summary(run(None))
torch.save({"resumed": resumed, "reference": reference, "resumed_epochs": resumed_epochs}, out)
