"""Data uncertainty: CoMet's per-sample confidence weights.

CoMet (Aqeel et al., ICCV 2025) down-weights training images that the current
model scores as atypical, using an outlier fence on the score distribution::

    w_i = min(1, t / a_θ(x_i)),    t = Q3 + κ (Q3 − Q1)

and trains on the weighted loss ``Σ_i w_i L_AD(x_i; θ)``.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

#: relative size of the shift ε (fraction of the score range) and its absolute floor
_EPS_RELATIVE = 1e-6
_EPS_ABSOLUTE = 1e-12


def confidence_weights(scores: Tensor, kappa: float = 1.5) -> tuple[Tensor, float]:
    """Confidence weights ``w_i = min(1, t / a_i)`` from anomaly scores ``s_i``.

    The paper's ``a_θ(x_i)`` is the anomaly score; scores of real detectors may be
    negative or zero (e.g. log-likelihoods), so they are shifted by their minimum::

        a_i = s_i − min(s) + ε,   ε = 1e-6 · (max(s) − min(s)) + 1e-12
        t   = Q3(a) + κ (Q3(a) − Q1(a))      (torch.quantile, linear interpolation)
        w_i = min(1, t / a_i)

    Shifting by the minimum makes every ``a_i ≥ ε > 0``, so the division can never
    be by zero (or flip sign) by construction, and makes ``w`` invariant to an
    additive offset of the scores. Samples inside the fence (``a_i ≤ t``) get
    ``w_i = 1`` exactly; beyond it the weight decays as ``t / a_i ∈ (0, 1)``.

    Args:
        scores: anomaly scores, any shape (flattened); higher = more anomalous.
        kappa: fence multiplier κ ≥ 0 (1.5 is Tukey's fence).

    Returns:
        ``(w, t)``: weights with the shape and (floating) dtype of ``scores`` and
        the threshold ``t`` in the shifted score space.

    Raises:
        ValueError: if ``kappa`` is negative or not finite, ``scores`` is empty or
            contains non-finite values.
    """
    if not math.isfinite(kappa) or kappa < 0:
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}")
    if scores.numel() == 0:
        raise ValueError("scores must contain at least one value, got an empty tensor")
    s = scores.detach().to(torch.float64).flatten()
    if not bool(torch.isfinite(s).all()):
        bad = int((~torch.isfinite(s)).sum())
        raise ValueError(f"scores must be finite, got {bad} non-finite value(s) of {s.numel()}")
    s_min, s_max = s.min(), s.max()
    a = s - s_min + (_EPS_RELATIVE * (s_max - s_min) + _EPS_ABSOLUTE)
    q1, q3 = torch.quantile(a, torch.tensor([0.25, 0.75], dtype=a.dtype, device=a.device), interpolation="linear")
    t = q3 + kappa * (q3 - q1)
    w = torch.clamp(t / a, max=1.0)
    out_dtype = scores.dtype if scores.is_floating_point() else torch.get_default_dtype()
    logger.debug("confidence weights: t=%.6g, %d/%d samples below 1", float(t), int((w < 1).sum()), w.numel())
    return w.to(device=scores.device, dtype=out_dtype).reshape(scores.shape), float(t)


def weighted_mean(losses: Tensor, weights: Tensor, weight_sum: Tensor | float | None = None) -> Tensor:
    """Normalised weighted loss ``Σ_i w_i L_i / Σ_i w_i``.

    The paper writes the plain sum ``Σ_i w_i L_AD(x_i)``; dividing by ``Σ_i w_i``
    keeps the loss scale (hence the effective learning rate) independent of the
    batch size and of how many samples are down-weighted, and reduces to the
    ordinary mean when all ``w_i = 1``. Weights must be positive (as produced by
    :func:`confidence_weights`).

    ``weight_sum`` replaces the denominator ``Σ_i w_i`` of these samples: data-parallel
    training passes the whole batch's sum (divided by the number of processes) so that
    each process's share of the batch is normalised like the whole batch.
    """
    weights = weights.to(dtype=losses.dtype)
    return (weights * losses).sum() / (weights.sum() if weight_sum is None else weight_sum)
