"""Inner/outer meta step against a closed-form update on a linear least-squares model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from comet_pipeline.comet.meta import meta_gradients

ALPHA, BETA, L2 = 0.05, 0.1, 0.01


class Linear(nn.Module):
    """loss_i = (θ·x_i − y_i)² with features [x_i, y_i]; ``unused`` never affects the loss."""

    def __init__(self, theta: np.ndarray) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta, dtype=torch.float64))
        self.unused = nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def forward(self, features: Tensor) -> Tensor:
        return (features[:, :-1] @ self.theta - features[:, -1]) ** 2


def _data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    xs, xq = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    ys, yq = rng.normal(size=4), rng.normal(size=5)
    ws, wq = np.array([1.0, 0.5, 1.0, 0.2]), np.array([1.0, 1.0, 0.3, 1.0, 0.7])
    return xs, ys, ws, xq, yq, wq


def _grad(theta: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """∇ of Σ w_i (θ·x_i − y_i)² / Σ w + L2 ‖θ‖²."""
    return 2 * (w * (x @ theta - y)) @ x / w.sum() + 2 * L2 * theta


def _hessian(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return 2 * (x.T * w) @ x / w.sum() + 2 * L2 * np.eye(x.shape[1])


def _run(order: str, inner_steps: int, theta0: np.ndarray):
    xs, ys, ws, xq, yq, wq = _data()
    model = Linear(theta0)
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    result = meta_gradients(
        model, t(np.c_[xs, ys]), t(ws), t(np.c_[xq, yq]), t(wq),
        alpha=ALPHA, inner_steps=inner_steps, l2_coef=L2, order=order,
    )
    return model, result


@pytest.mark.parametrize("inner_steps", [1, 2])
@pytest.mark.parametrize("order", ["first", "second"])
def test_meta_update_matches_closed_form(order: str, inner_steps: int) -> None:
    xs, ys, ws, xq, yq, wq = _data()
    theta0 = np.array([0.3, -0.2, 0.5])
    fast = theta0.copy()
    for _ in range(inner_steps):
        fast = fast - ALPHA * _grad(fast, xs, ys, ws)
    g = _grad(fast, xq, yq, wq)
    if order == "second":  # d θ'/d θ = (I − α H_S)^k, H_S constant for a quadratic loss
        g = np.linalg.matrix_power(np.eye(3) - ALPHA * _hessian(xs, ws), inner_steps) @ g
    meta_loss = (wq * (xq @ fast - yq) ** 2).sum() / wq.sum() + L2 * fast @ fast

    model, result = _run(order, inner_steps, theta0)
    np.testing.assert_allclose(result.grads["theta"].numpy(), g, rtol=1e-10)
    assert torch.equal(result.grads["unused"], torch.zeros(2, dtype=torch.float64))
    assert result.meta_loss.item() == pytest.approx(meta_loss, rel=1e-10)
    np.testing.assert_allclose(result.support_losses.numpy(), (xs @ theta0 - ys) ** 2, rtol=1e-12)

    # the outer step is the optimizer's: SGD at lr β gives θ − β ∇_θ L_meta
    model.theta.grad = result.grads["theta"]
    torch.optim.SGD([model.theta], lr=BETA).step()
    np.testing.assert_allclose(model.theta.detach().numpy(), theta0 - BETA * g, rtol=1e-10)
    assert np.linalg.norm(model.theta.detach().numpy() - theta0) > 1e-3


def test_first_and_second_order_differ_and_model_untouched() -> None:
    theta0 = np.array([0.3, -0.2, 0.5])
    model, first = _run("first", 1, theta0)
    _, second = _run("second", 1, theta0)
    assert not torch.allclose(first.grads["theta"], second.grads["theta"], rtol=1e-3)
    np.testing.assert_array_equal(model.theta.detach().numpy(), theta0)
    assert model.theta.grad is None


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"inner_steps": 0}, "inner_steps"),
        ({"l2_coef": -1.0}, "l2_coef"),
        ({"order": "third"}, "order"),
    ],
)
def test_bad_arguments(kwargs: dict, name: str) -> None:
    x, w = torch.zeros(2, 4, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    args = {"alpha": 0.1, "inner_steps": 1, "l2_coef": 0.0, "order": "first"} | kwargs
    with pytest.raises(ValueError, match=name):
        meta_gradients(Linear(np.zeros(3)), x, w, x, w, **args)
