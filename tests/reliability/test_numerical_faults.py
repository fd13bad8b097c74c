"""NaN/Inf in training: a clear error or (on_nonfinite="skip") a skipped, counted batch; never a NaN model."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from comet_pipeline.comet.confidence import confidence_weights, weighted_mean
from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.training.trainer import CHECKPOINT_FILE, CoMetConfig, TrainConfig, train

C = 3


class Centre(AnomalyModel):
    """loss = score = mean((f − μ)²); ``score_sign=-1`` makes every score ≤ 0, ``sqrt_trap`` an Inf/NaN gradient."""

    name = "centre"

    def __init__(self, score_sign: float = 1.0, sqrt_trap: bool = False) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(C))
        self.score_sign = score_sign
        self.sqrt_trap = sqrt_trap

    def forward(self, features: Tensor) -> Tensor:
        loss = ((features - self.mu.view(1, 1, C, 1, 1)) ** 2).flatten(1).mean(1)
        if self.sqrt_trap:  # value 0, gradient NaN: d sqrt(|x|)/dx at x = 0
            loss = loss + (self.mu - self.mu.detach()).abs().sqrt().sum()
        return loss

    def score(self, features: Tensor) -> Tensor:
        return self.score_sign * ((features - self.mu.view(1, 1, C, 1, 1)) ** 2).flatten(1).mean(1)

    def anomaly_map(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        return F.interpolate(features.mean((1, 2)).unsqueeze(1), size=size).squeeze(1)


def _data(n: int = 20, nan_rows: tuple[int, ...] = ()) -> tuple[np.ndarray, list[str]]:
    feats = 2 + np.random.default_rng(0).normal(size=(n, 1, C, 2, 2)).astype(np.float32)
    feats[list(nan_rows)] = np.nan
    return feats, [f"s{i:02d}" for i in range(n)]


def _cfg(**kwargs) -> TrainConfig:
    return TrainConfig(**({"epochs": 3, "batch_size": 4, "lr": 0.1, "device": "cpu"} | kwargs))


def test_nan_loss_raises_by_default_and_is_skipped_and_counted_on_request(caplog) -> None:
    feats, ids = _data(nan_rows=(3,))
    with pytest.raises(FloatingPointError, match=r"non-finite training loss \(nan\) at epoch 0, step \d+.*'skip'"):
        train(Centre(), feats, ids, _cfg(), progress=False)
    with caplog.at_level(logging.WARNING, logger="comet_pipeline.training.trainer"):
        res = train(Centre(), feats, ids, _cfg(on_nonfinite="skip"), progress=False)
    history = res.history
    if "s03" in res.train_ids:  # one batch per epoch holds the NaN image
        assert history["n_skipped"].tolist() == [1, 1, 1]
        assert np.isfinite(history["train_loss"]).all()
        assert any("batch skipped" in r.getMessage() for r in caplog.records)
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
    assert torch.all(res.model.mu.detach() > 0.5)  # still trained on the good batches


def test_every_batch_non_finite_still_gives_a_finite_model() -> None:
    feats, ids = _data(nan_rows=tuple(range(20)))
    res = train(Centre(), feats, ids, _cfg(on_nonfinite="skip", epochs=2), progress=False)
    n_batches = -(-len(res.train_ids) // 4)
    assert res.history["train_loss"].isna().all() and (res.history["n_skipped"] == n_batches).all()
    assert torch.equal(res.model.mu.detach(), torch.zeros(C))  # never updated


def test_non_finite_gradient_with_finite_loss(caplog) -> None:
    feats, ids = _data()
    with pytest.raises(FloatingPointError, match="non-finite gradient at epoch 0, step 0"):
        train(Centre(sqrt_trap=True), feats, ids, _cfg(), progress=False)
    res = train(Centre(sqrt_trap=True), feats, ids, _cfg(on_nonfinite="skip"), progress=False)
    assert (res.history["n_skipped"] == -(-len(res.train_ids) // 4)).all()
    assert torch.equal(res.model.mu.detach(), torch.zeros(C))


@pytest.mark.parametrize("on_nonfinite", ["raise", "skip"])
def test_diverging_parameters_are_never_returned_or_checkpointed(tmp_path: Path, on_nonfinite: str) -> None:
    feats, ids = _data()
    feats *= 1e4  # gradients ~1e4: one SGD step of lr 1e36 overflows float32
    config = _cfg(optimizer="sgd", lr=1e36, batch_size=32, on_nonfinite=on_nonfinite, checkpoint_dir=str(tmp_path))
    with pytest.raises(FloatingPointError, match=r"NaN/Inf values after epoch 0 \(mu\)"):
        train(Centre(), feats, ids, config, progress=False)
    assert not (tmp_path / CHECKPOINT_FILE).exists()


@pytest.mark.parametrize(
    "scores",
    [[0.0] * 6, [-1.0] * 6, [3.0] * 6, [-5.0, -1.0, 0.0, 0.0, 2.0, 40.0], [0.0], [-1e30, 1e30, 0.0]],
    ids=["zeros", "negative-constant", "constant", "mixed-sign", "single", "extreme"],
)
def test_confidence_weights_never_divide_by_zero(scores: list[float]) -> None:
    s = torch.tensor(scores, dtype=torch.float32)
    w, t = confidence_weights(s)
    assert torch.isfinite(w).all() and ((w > 0) & (w <= 1)).all() and np.isfinite(t)
    if len(set(scores)) == 1:
        assert (w == 1).all()
    loss = weighted_mean(torch.ones_like(w), w)
    assert torch.isfinite(loss) and float(loss) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-finite"):
        confidence_weights(torch.tensor([*scores, float("nan")]))


def test_training_with_non_positive_scores_and_non_finite_scores() -> None:
    feats, ids = _data()
    comet = CoMetConfig(confidence_weighting=True, warmup_epochs=0)
    res = train(Centre(score_sign=-1.0), feats, ids, _cfg(), comet, progress=False)  # every score <= 0
    assert np.isfinite(res.weights["weight"]).all() and (res.final_weights > 0).all()
    feats, ids = _data(nan_rows=(5,))
    with pytest.raises(FloatingPointError, match=r"non-finite anomaly score (at epoch 0|after training) \(s05\)"):
        train(Centre(), feats, ids, _cfg(on_nonfinite="skip"), comet, progress=False)
