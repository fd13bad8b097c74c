"""The trainer: baseline = every CoMet switch off, bit for bit; CoMet components on the same loop."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.training.trainer import (
    HISTORY_COLUMNS,
    CoMetConfig,
    TrainConfig,
    anomaly_maps,
    score_features,
    train,
)

C, H, W = 4, 2, 2
N_CLEAN, N_OUT = 60, 4


class Centre(AnomalyModel):
    """Learnable centre μ: loss_i = score_i = mean((f_i − μ)²) (+ optional global-RNG noise)."""

    name = "centre"

    def __init__(self, noise: float = 0.0) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(C))
        self.noise = noise

    def _sq(self, features: Tensor) -> Tensor:
        return (features - self.mu.view(1, 1, C, 1, 1)) ** 2  # (B, R, C, h, w)

    def forward(self, features: Tensor) -> Tensor:
        loss = self._sq(features).flatten(1).mean(1)
        return loss + self.noise * torch.rand_like(loss) if self.training else loss

    def score(self, features: Tensor) -> Tensor:
        return self._sq(features).flatten(1).mean(1)

    def anomaly_map(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        return F.interpolate(self._sq(features).mean((1, 2)).unsqueeze(1), size=size, mode="bilinear").squeeze(1)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, list[str], set[str]]:
    """Gaussian cluster at 2 plus far outliers at 8, float16, shuffled; ids name the outliers."""
    rng = np.random.default_rng(0)
    clean = 2 + 0.3 * rng.normal(size=(N_CLEAN, 1, C, H, W))
    out = 8 + 0.3 * rng.normal(size=(N_OUT, 1, C, H, W))
    feats = np.concatenate([clean, out]).astype(np.float16)
    ids = [f"clean_{i:03d}" for i in range(N_CLEAN)] + [f"outlier_{i}" for i in range(N_OUT)]
    order = rng.permutation(len(ids))
    return feats[order], [ids[i] for i in order], {i for i in ids if i.startswith("outlier")}


def _cfg(**kwargs) -> TrainConfig:
    return TrainConfig(**({"epochs": 4, "lr": 0.2, "device": "cpu"} | kwargs))


def _run(data, comet: CoMetConfig | None = None, noise: float = 0.0, **cfg):
    feats, ids, _ = data
    return train(Centre(noise), feats, ids, _cfg(**cfg), comet, progress=False)


def _same(a, b) -> None:
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    cols = [c for c in HISTORY_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(a.history[cols], b.history[cols])


def test_all_switches_off_is_the_baseline_bit_for_bit(data) -> None:
    baseline = _run(data, noise=0.1)
    _same(baseline, _run(data, CoMetConfig(), noise=0.1))
    tuned_off = CoMetConfig(kappa=3.0, warmup_epochs=0, lambda0=1.0, gamma=9.0, inner_lr=0.5, meta_order="second")
    assert not tuned_off.enabled
    _same(baseline, _run(data, tuned_off, noise=0.1))
    assert (baseline.history["lambda"] == 0).all() and (baseline.final_weights == 1.0).all()


class NoisyEverywhere(Centre):
    """Draws global-RNG noise in eval mode too, as SimpleNet's synthetic anomalies do."""

    def forward(self, features: Tensor) -> Tensor:
        loss = self._sq(features).flatten(1).mean(1)
        return loss + self.noise * torch.rand_like(loss)


def test_validation_losses_do_not_shift_the_training_rng(data) -> None:
    """Covariance regularisation at λ0 = 0 only fills the loss window: the run must stay the baseline,
    although the validation loss draws noise from the global RNG."""
    feats, ids, _ = data
    baseline = train(NoisyEverywhere(0.1), feats, ids, _cfg(), CoMetConfig(), progress=False)
    watched = train(NoisyEverywhere(0.1), feats, ids, _cfg(), CoMetConfig(covariance_regularization=True, lambda0=0.0), progress=False)
    assert torch.equal(baseline.model.mu, watched.model.mu)
    pd.testing.assert_series_equal(baseline.history["train_loss"], watched.history["train_loss"])
    assert (watched.history["det_sigma"] > 0).any()  # the window really was filled


def test_confidence_weighting_downweights_outliers(data) -> None:
    _, _, outliers = data
    res = _run(data, CoMetConfig(confidence_weighting=True, warmup_epochs=2), epochs=5)
    hist = res.history.set_index("epoch")
    assert (hist.loc[[0, 1], "n_weighted"] == 0).all() and (hist.loc[[0, 1], "mean_weight"] == 1).all()
    assert (hist.loc[2:, "n_weighted"] > 0).all()

    during = res.weights[~res.weights["final"]]
    assert sorted(during["epoch"].unique()) == [2, 3, 4]
    for _, frame in during.groupby("epoch"):
        assert set(frame["sample_id"]) == set(res.train_ids)
        w = frame.set_index("sample_id")["weight"]
        train_outliers = [i for i in outliers if i in w.index]
        assert (w[train_outliers] < 0.5).all()
        assert (w.drop(train_outliers) == 1.0).mean() >= 0.9

    final = res.final_weights
    assert list(final.index) == list(data[1]) and final.index.name == "sample_id"
    assert (final[sorted(outliers)] < 0.5).all()
    assert (final.drop(sorted(outliers)) == 1.0).mean() >= 0.9
    assert ((final > 0) & (final <= 1)).all()


def test_training_tables_mean_weight_is_the_mean_over_reweightings(data) -> None:
    from comet_pipeline.experiment import training_tables

    res = _run(data, CoMetConfig(confidence_weighting=True, warmup_epochs=2), epochs=5)
    _, weights, final = training_tables("k", res)
    during = weights[~weights["final"]]
    expected = during.groupby("sample_id")["weight"].mean()
    table = final.set_index("sample_id")
    trained = table[table["role"] == "train"]
    np.testing.assert_allclose(trained["mean_weight"], expected.reindex(trained.index), rtol=1e-12)
    assert (table.loc[table["role"] == "val", "mean_weight"] == 1.0).all()
    assert (trained["mean_weight"] < 1).any() and ((trained["mean_weight"] > 0) & (trained["mean_weight"] <= 1)).all()


def test_covariance_regularisation_logs_lambda(data) -> None:
    comet = CoMetConfig(covariance_regularization=True, lambda0=1e-2, gamma=0.5, window=4)
    hist = _run(data, comet).history
    assert (hist["det_sigma"] >= -1e-12).all() and (hist["det_sigma"] > 0).any()
    # one (train, val) pair per epoch: epochs 0 and 1 train with < 2 pairs, so det Σ = 0 and λ = λ0
    assert (hist["det_sigma"].iloc[:2] == 0).all() and (hist["lambda"].iloc[:2] == 1e-2).all()
    assert (hist["det_sigma"].iloc[2:] > 0).all()
    np.testing.assert_allclose(hist["lambda"], 1e-2 * (1 + 0.5 * hist["det_sigma"]))
    assert np.isfinite(hist[["train_loss", "val_loss"]].to_numpy()).all()


@pytest.mark.parametrize(
    "comet",
    [
        CoMetConfig(confidence_weighting=True, warmup_epochs=1),
        CoMetConfig(covariance_regularization=True),
        CoMetConfig(meta_learning=True, inner_lr=0.05),
        CoMetConfig(meta_learning=True, inner_lr=0.05, inner_steps=2, meta_order="second"),
    ],
    ids=["confidence", "covariance", "meta-first", "meta-second"],
)
def test_each_switch_alone_trains(data, comet: CoMetConfig) -> None:
    res = _run(data, comet, epochs=3)
    assert list(res.history.columns) == list(HISTORY_COLUMNS) and len(res.history) == 3
    assert np.isfinite(res.history.drop(columns="epoch").to_numpy(dtype=float)).all()
    assert res.history["train_loss"].iloc[-1] < res.history["train_loss"].iloc[0]
    assert torch.all(res.model.mu.detach() > 1.0)  # moved from 0 towards the cluster at 2


def test_seed_determinism_with_everything_on(data) -> None:
    comet = CoMetConfig(
        confidence_weighting=True, covariance_regularization=True, meta_learning=True, warmup_epochs=1, inner_lr=0.05
    )
    a, b = _run(data, comet, noise=0.1, epochs=3), _run(data, comet, noise=0.1, epochs=3)
    _same(a, b)
    pd.testing.assert_frame_equal(a.weights, b.weights)
    c = _run(data, comet, noise=0.1, epochs=3, seed=1)
    assert not torch.equal(a.model.mu, c.model.mu)


def test_validation_split(data) -> None:
    feats, ids, _ = data
    a, b = _run(data, epochs=1), _run(data, epochs=1)
    assert a.val_ids == b.val_ids and a.train_ids == b.train_ids
    assert not set(a.val_ids) & set(a.train_ids)
    assert set(a.val_ids) | set(a.train_ids) == set(ids)
    assert len(a.val_ids) == round(0.15 * len(ids))
    assert _run(data, epochs=1, seed=3).val_ids != a.val_ids
    # final scores are those of the final model, in train_ids / val_ids order
    scores = pd.Series(score_features(a.model, feats), index=ids)
    np.testing.assert_allclose(a.train_scores, scores[a.train_ids].to_numpy())
    np.testing.assert_allclose(a.val_scores, scores[a.val_ids].to_numpy())


def test_non_finite_loss_raises(data) -> None:
    feats, ids, _ = data
    bad = feats.copy()
    bad[:] = np.nan
    with pytest.raises(FloatingPointError, match="epoch 0, step 0"):
        train(Centre(), bad, ids, _cfg(), progress=False)


def test_inference_helpers_and_logging(data, caplog: pytest.LogCaptureFixture) -> None:
    feats, ids, _ = data
    with caplog.at_level(logging.INFO, logger="comet_pipeline.training.trainer"):
        res = _run(data, epochs=2)
    assert sum("epoch" in r.getMessage() and "lambda" in r.getMessage() for r in caplog.records) == 2
    model = res.model.train()
    maps = anomaly_maps(model, feats[:5], size=(8, 6), batch_size=2)
    assert maps.shape == (5, 8, 6) and maps.dtype == np.float32
    assert score_features(model, torch.as_tensor(feats), batch_size=7).shape == (len(ids),)
    assert model.training  # previous mode restored


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: TrainConfig(optimizer="rmsprop"), "optimizer"),
        (lambda: TrainConfig(val_fraction=1.0), "val_fraction"),
        (lambda: TrainConfig(epochs=0), "epochs"),
        (lambda: TrainConfig(device="gpu7"), "device"),
        (lambda: CoMetConfig(meta_order="zeroth"), "meta_order"),
        (lambda: CoMetConfig(kappa=-1.0), "kappa"),
        (lambda: CoMetConfig(window=1), "window"),
    ],
)
def test_config_validation(factory, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        factory()


def test_input_validation(data) -> None:
    feats, ids, _ = data
    with pytest.raises(ValueError, match="sample_ids"):
        train(Centre(), feats, ids[:-1], _cfg(), progress=False)
    with pytest.raises(ValueError, match="unique"):
        train(Centre(), feats, [ids[0]] * len(ids), _cfg(), progress=False)
