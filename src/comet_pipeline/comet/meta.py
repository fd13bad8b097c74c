"""Meta-learning: CoMet's inner/outer step on a support/query split of a task batch.

With ``L_SCL(θ; S) = Σ_{i∈S} w_i L_AD(x_i; θ) / Σ_{i∈S} w_i + λ ‖θ‖²`` (CoMet's
confident loss, see :func:`scl_loss`):

- inner loop, on the support set ``S`` (``n`` steps)::

      θ' = θ − α ∇_θ L_SCL(θ; S)

- outer loop, on the query set ``Q``::

      θ ← θ − β ∇_θ L_meta(θ'),   L_meta(θ') = L_SCL(θ'; Q)

:func:`meta_gradients` returns ``∇_θ L_meta``; the outer step is taken by the
trainer's optimizer (plain SGD with learning rate β gives exactly the update
above). Parameters are swapped with :func:`torch.func.functional_call`, so the
model is never modified here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from comet_pipeline.comet.confidence import weighted_mean
from comet_pipeline.comet.model_uncertainty import squared_l2_norm

logger = logging.getLogger(__name__)

#: ``"first"``: first-order MAML (∇ at θ' applied to θ); ``"second"``: differentiate through the inner steps
META_ORDERS: tuple[str, ...] = ("first", "second")


@dataclass(frozen=True)
class MetaStep:
    """Result of :func:`meta_gradients`.

    Attributes:
        meta_loss: ``L_meta(θ')`` (detached scalar).
        grads: ``∇_θ L_meta`` per trainable parameter name (detached).
        support_losses: unweighted per-sample ``L_AD(x_i; θ)`` on the support set at
            the starting parameters θ (detached), i.e. the inner loop's training loss.
    """

    meta_loss: Tensor
    grads: dict[str, Tensor]
    support_losses: Tensor


def scl_loss(
    model: nn.Module,
    features: Tensor,
    weights: Tensor,
    l2_coef: float = 0.0,
    params: dict[str, Tensor] | None = None,
    weight_sum: Tensor | float | None = None,
) -> tuple[Tensor, Tensor]:
    """CoMet's confident loss ``Σ_i w_i L_AD(x_i; θ) / Σ_i w_i + λ ‖θ‖²``.

    ``θ`` are the model's own parameters, or ``params`` (trainable parameters by
    name, evaluated with ``functional_call``). The ``λ ‖θ‖²`` term is added only
    when ``l2_coef > 0``. ``weight_sum`` replaces the denominator ``Σ_i w_i``
    (see :func:`~comet_pipeline.comet.confidence.weighted_mean`). Returns
    ``(loss, per-sample L_AD)``.
    """
    losses = model(features) if params is None else functional_call(model, params, (features,))
    if losses.shape != weights.shape:
        raise ValueError(
            f"model.forward must return per-sample losses of shape {tuple(weights.shape)}, "
            f"got {tuple(losses.shape)}"
        )
    loss = weighted_mean(losses, weights, weight_sum)
    if l2_coef > 0:
        theta = params.values() if params is not None else (p for p in model.parameters() if p.requires_grad)
        loss = loss + l2_coef * squared_l2_norm(theta)
    return loss, losses


def meta_gradients(
    model: nn.Module,
    support_features: Tensor,
    support_weights: Tensor,
    query_features: Tensor,
    query_weights: Tensor,
    alpha: float,
    inner_steps: int = 1,
    l2_coef: float = 0.0,
    order: str = "first",
) -> MetaStep:
    """Meta-gradient ``∇_θ L_SCL(θ'; Q)`` with ``θ'`` after ``inner_steps`` steps on ``S``.

    Each inner step is ``θ' ← θ' − α ∇_{θ'} L_SCL(θ'; S)`` starting from ``θ' = θ``.

    - ``order="first"``: the inner steps are not differentiated; the gradient
      ``∇_{θ'} L_SCL(θ'; Q)`` at θ' is returned as the update direction for θ
      (no second derivatives).
    - ``order="second"``: the inner steps are kept in the autograd graph
      (``create_graph=True``), so the result is the exact
      ``∏_k (I − α H_k)ᵀ ∇_{θ'} L_SCL(θ'; Q)`` with ``H_k`` the support Hessians.

    Only parameters with ``requires_grad`` are adapted; buffers and frozen
    parameters are used as they are.
    """
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha (inner learning rate) must be a finite number > 0, got {alpha!r}")
    if not isinstance(inner_steps, int) or inner_steps < 1:
        raise ValueError(f"inner_steps must be an integer >= 1, got {inner_steps!r}")
    if not math.isfinite(l2_coef) or l2_coef < 0:
        raise ValueError(f"l2_coef must be a finite number >= 0, got {l2_coef!r}")
    if order not in META_ORDERS:
        raise ValueError(f"order must be one of {META_ORDERS}, got {order!r}")
    theta = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not theta:
        raise ValueError("model has no trainable parameters (none with requires_grad=True)")
    second = order == "second"

    fast = theta
    support_losses: Tensor | None = None
    for _ in range(inner_steps):
        inner_loss, losses = scl_loss(model, support_features, support_weights, l2_coef, fast)
        if support_losses is None:
            support_losses = losses.detach()
        grads = _grad(inner_loss, fast, create_graph=second)
        fast = {name: p - alpha * grads[name] for name, p in fast.items()}
        if not second:
            fast = {name: p.detach().requires_grad_() for name, p in fast.items()}

    meta_loss, _ = scl_loss(model, query_features, query_weights, l2_coef, fast)
    outer = _grad(meta_loss, theta if second else fast, create_graph=False)
    assert support_losses is not None  # inner_steps >= 1
    return MetaStep(
        meta_loss=meta_loss.detach(),
        grads={name: g.detach() for name, g in outer.items()},
        support_losses=support_losses,
    )


def _grad(loss: Tensor, wrt: dict[str, Tensor], create_graph: bool) -> dict[str, Tensor]:
    """``∂loss/∂wrt`` by name; parameters that do not influence ``loss`` get zeros."""
    grads = torch.autograd.grad(loss, list(wrt.values()), create_graph=create_graph, allow_unused=True)
    return {name: torch.zeros_like(p) if g is None else g for (name, p), g in zip(wrt.items(), grads)}
