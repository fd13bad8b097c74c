"""Training cases shared by test_distributed.py (single process) and ddp_script.py (under torchrun)."""

from __future__ import annotations

import numpy as np
import torch

from comet_pipeline.models import AnomalyModel, build_model
from comet_pipeline.training.trainer import HISTORY_COLUMNS, CoMetConfig, TrainConfig, TrainResult, _split, train

#: equal to one process: "flow" (confidence weighting + covariance regularisation) and "flow_skip" (baseline,
#: NaN features in two training images, on_nonfinite="skip": every rank must skip the same batches);
#: ranks must agree, but differ from one process: "flow_meta" (meta-learning on), "simplenet" (noise, all on)
CASES: tuple[str, ...] = ("flow", "flow_skip", "flow_meta", "simplenet")
N, N_OUT, VIEWS, C = 25, 3, 2, 8  # 25 images: 4 held out, 21 trained on = batches of 5, 5, 5, 5 and 1
VAL_FRACTION = 0.15
KAPPA = 1.5


def make_features() -> np.ndarray:
    """``(N, 2, 8, 4, 4)`` float32: a Gaussian cluster plus ``N_OUT`` shifted outliers (weights < 1)."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(N, VIEWS, C, 4, 4))
    feats[-N_OUT:] += 3.0
    return feats[rng.permutation(N)].astype(np.float32)


def initial_model(name: str) -> AnomalyModel:
    """The case's model before training (seeded: the same in every process)."""
    torch.manual_seed(0)
    if name.startswith("flow"):
        return build_model("flow", in_channels=C, n_blocks=2, hidden=16, grid=2)
    return build_model("simplenet", in_channels=C, hidden=16)


def run_case(name: str, features: np.ndarray, checkpoint_dir: str | None = None) -> TrainResult:
    ids = [f"s{i:03d}" for i in range(len(features))]
    comet = CoMetConfig(
        confidence_weighting=True, covariance_regularization=True, meta_learning=name in ("flow_meta", "simplenet"),
        kappa=KAPPA, warmup_epochs=1, window=3, lambda0=1e-2, gamma=0.5, inner_lr=1e-2,
    )
    if name == "flow_skip":
        comet = CoMetConfig()
        features = features.copy()
        train_idx, _ = _split(len(features), VAL_FRACTION, torch.Generator().manual_seed(0))  # the trainer's split
        features[train_idx[:2].numpy()] = np.nan
    config = TrainConfig(
        epochs=4, batch_size=5, lr=5e-3, optimizer="adam", weight_decay=1e-4, val_fraction=VAL_FRACTION,
        device="cpu", on_nonfinite="skip", checkpoint_dir=checkpoint_dir,
    )
    return train(initial_model(name), features, ids, config, comet, progress=False)


def summary(result: TrainResult) -> dict:
    """Everything a run returns, as tensors and lists (``seconds`` left out: wall time differs)."""
    history = result.history.drop(columns="seconds")
    assert list(history.columns) == [c for c in HISTORY_COLUMNS if c != "seconds"]
    return {
        "state": {k: v.clone() for k, v in result.model.state_dict().items()},
        "history": {c: history[c].tolist() for c in history.columns},
        "weights": result.weights.drop(columns="score").to_dict(orient="list"),
        "scores": result.weights["score"].tolist(),
        "final_weights": result.final_weights.to_dict(),
        "train_ids": result.train_ids,
        "val_ids": result.val_ids,
        "train_scores": result.train_scores.tolist(),
        "val_scores": result.val_scores.tolist(),
    }
