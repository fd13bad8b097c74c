"""Σ of the jointly standardised (train, val) loss window and λ(Σ) = λ0(1 + γ det Σ)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from comet_pipeline.comet.model_uncertainty import LossWindow, adaptive_lambda, squared_l2_norm


def test_covariance_matches_hand_normalised_np_cov() -> None:
    train = np.array([2.0, 1.5, 1.2, 1.1, 0.9])
    val = np.array([2.2, 1.9, 1.7, 1.8, 1.6])
    window = LossWindow(size=5)
    for t, v in zip(train, val):
        window.append(t, v)
    both = np.concatenate([train, val])
    expected = np.cov(np.stack([train, val]) - both.mean()) / both.var()
    np.testing.assert_allclose(window.covariance(), expected, rtol=1e-9)
    assert window.determinant() == pytest.approx(np.linalg.det(expected), rel=1e-9)


def test_window_keeps_last_pairs_and_is_scale_free() -> None:
    train = [5.0, 2.0, 1.5, 1.2, 1.1, 0.9]
    val = [4.0, 2.2, 1.9, 1.7, 1.8, 1.6]
    window, scaled = LossWindow(size=4), LossWindow(size=4)
    for t, v in zip(train, val):
        window.append(t, v)
        scaled.append(1000 * t - 7, 1000 * v - 7)  # same unit change and offset for both losses
    assert len(window) == 4
    tail = np.array([train[-4:], val[-4:]])
    expected = np.cov((tail - tail.mean()) / tail.std())
    np.testing.assert_allclose(window.covariance(), expected, rtol=1e-9)
    assert scaled.determinant() == pytest.approx(window.determinant(), rel=1e-6)


def test_fewer_than_two_pairs_give_zeros() -> None:
    window = LossWindow(size=3)
    assert np.array_equal(window.covariance(), np.zeros((2, 2)))
    window.append(1.0, 2.0)
    assert window.determinant() == 0.0


def test_adaptive_lambda_formula() -> None:
    assert adaptive_lambda(0.0, 5e-3, 0.5) == pytest.approx(5e-3)
    assert adaptive_lambda(0.2, 5e-3, 0.5) == pytest.approx(5e-3 * (1 + 0.5 * 0.2))
    assert adaptive_lambda(3.0, 1.0, 2.0) == pytest.approx(7.0)


@pytest.mark.parametrize(("kwargs", "name"), [({"lambda0": -1.0}, "lambda0"), ({"gamma": -0.5}, "gamma")])
def test_adaptive_lambda_rejects_negative(kwargs: dict, name: str) -> None:
    args = {"det_sigma": 0.1, "lambda0": 1.0, "gamma": 1.0} | kwargs
    with pytest.raises(ValueError, match=name):
        adaptive_lambda(**args)


def test_window_validation() -> None:
    with pytest.raises(ValueError, match="size"):
        LossWindow(size=1)
    with pytest.raises(ValueError, match="finite"):
        LossWindow().append(float("nan"), 1.0)


def test_squared_l2_norm() -> None:
    assert squared_l2_norm([torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]).item() == pytest.approx(14.0)
