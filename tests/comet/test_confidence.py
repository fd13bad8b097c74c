"""Confidence weights w_i = min(1, t / a_i), t = Q3 + κ(Q3 − Q1) over shifted scores."""

from __future__ import annotations

import pytest
import torch

from comet_pipeline.comet.confidence import confidence_weights, weighted_mean


def test_hand_computed_values() -> None:
    scores = torch.tensor([0.0, 1.0, 2.0, 3.0, 100.0], dtype=torch.float64)
    eps = 1e-6 * 100 + 1e-12
    w, t = confidence_weights(scores, kappa=1.5)
    # a = s + eps; Q1 = 1 + eps, Q3 = 3 + eps (exact order statistics for n = 5)
    assert t == pytest.approx(3 + eps + 1.5 * 2, rel=1e-12)
    expected = torch.tensor([1.0, 1.0, 1.0, 1.0, (6 + eps) / (100 + eps)], dtype=torch.float64)
    torch.testing.assert_close(w, expected, rtol=1e-12, atol=0)


def test_hand_computed_with_interpolated_quartiles() -> None:
    scores = torch.tensor([4.0, 0.0, 2.0, 50.0, 1.0, 3.0], dtype=torch.float64)
    eps = 1e-6 * 50 + 1e-12
    w, t = confidence_weights(scores, kappa=1.5)
    # sorted a = [0,1,2,3,4,50] + eps; Q1 at position 1.25, Q3 at 3.75
    assert t == pytest.approx(3.75 + eps + 1.5 * 2.5, rel=1e-12)
    assert w[3].item() == pytest.approx((7.5 + eps) / (50 + eps), rel=1e-12)
    assert torch.all(w[[0, 1, 2, 4, 5]] == 1.0)


def test_range_exact_ones_and_monotone() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.cat([torch.randn(200, generator=gen), 8 + 4 * torch.rand(10, generator=gen)]) - 3.0
    w, t = confidence_weights(scores, kappa=1.0)
    a = scores - scores.min()
    assert torch.all(w > 0) and torch.all(w <= 1)
    assert torch.all(w[a < 0.99 * t] == 1.0)
    assert torch.all(w[a > 1.01 * t] < 1.0)
    order = torch.argsort(scores)
    assert torch.all(torch.diff(w[order]) <= 0)
    assert w.dtype == scores.dtype and w.shape == scores.shape


def test_offset_invariance() -> None:
    scores = torch.tensor([0.3, -1.2, 5.0, 0.1, 0.7, 12.0, -0.4], dtype=torch.float64)
    w, _ = confidence_weights(scores)
    w_shift, _ = confidence_weights(scores + 1234.5)
    torch.testing.assert_close(w_shift, w, rtol=1e-9, atol=0)


def test_all_equal_scores_give_ones() -> None:
    w, _ = confidence_weights(torch.full((7,), 3.25))
    assert torch.equal(w, torch.ones(7))


@pytest.mark.parametrize("kappa", [-0.1, float("nan"), float("inf")])
def test_bad_kappa(kappa: float) -> None:
    with pytest.raises(ValueError, match="kappa"):
        confidence_weights(torch.arange(5.0), kappa=kappa)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        confidence_weights(torch.tensor([0.0, 1.0, bad]))


def test_weighted_mean_normalises_and_reduces_to_mean() -> None:
    losses = torch.tensor([1.0, 2.0, 6.0])
    assert weighted_mean(losses, torch.ones(3)).item() == pytest.approx(3.0)
    assert weighted_mean(losses, torch.tensor([1.0, 1.0, 0.5])).item() == pytest.approx(6.0 / 2.5)
