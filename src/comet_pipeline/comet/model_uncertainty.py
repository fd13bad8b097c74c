"""Model uncertainty: covariance of the train/validation losses and the adaptive λ.

CoMet (Aqeel et al., ICCV 2025) measures model uncertainty by ``det Σ``, where
``Σ`` is the 2×2 covariance of the recent training and validation losses, and
regularises with ``λ(Σ) ‖θ‖²``, ``λ(Σ) = λ0 (1 + γ det Σ)``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

_NORM_EPS = 1e-12


class LossWindow:
    """The last ``size`` pairs ``(L_train, L_val)`` and their covariance ``Σ``.

    Both series are standardised *jointly* before the covariance is taken:
    ``x' = (x - m) / s`` with ``m, s`` the mean and std of all ``2n`` losses in
    the window (as the authors' code does). Raw losses of different detectors
    differ by orders of magnitude and a flow's negative log-likelihood crosses
    zero, so without this ``det Σ`` — which scales with the fourth power of the
    loss unit — would make ``γ`` model-specific. Standardised, ``det Σ`` is free of
    the loss's scale and offset, bounded (``Σ``'s trace is at most ~2), and
    still grows when the two losses fluctuate independently (unstable training).
    """

    def __init__(self, size: int = 10) -> None:
        if not isinstance(size, int) or size < 2:
            raise ValueError(f"size must be an integer >= 2 (a covariance needs two pairs), got {size!r}")
        self.size = size
        self._pairs: deque[tuple[float, float]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._pairs)

    def append(self, train: float, val: float) -> None:
        """Add one ``(train loss, validation loss)`` pair, dropping the oldest when full."""
        train, val = float(train), float(val)
        if not (math.isfinite(train) and math.isfinite(val)):
            raise ValueError(f"losses must be finite, got train={train!r}, val={val!r}")
        self._pairs.append((train, val))

    def covariance(self) -> np.ndarray:
        """``Σ = cov([L_train, L_val])`` (2×2, ddof=1) of the jointly standardised window.

        Returns a 2×2 zero matrix while fewer than two pairs are stored.
        """
        if len(self._pairs) < 2:
            return np.zeros((2, 2))
        losses = np.asarray(self._pairs, dtype=np.float64)  # (n, 2)
        losses = (losses - losses.mean()) / (losses.std() + _NORM_EPS)
        return np.cov(losses, rowvar=False)

    def determinant(self) -> float:
        """``det Σ`` (0 while fewer than two pairs are stored)."""
        return float(np.linalg.det(self.covariance()))


def adaptive_lambda(det_sigma: float, lambda0: float, gamma: float) -> float:
    """Adaptive regularisation strength ``λ(Σ) = λ0 (1 + γ det Σ)``."""
    if not math.isfinite(lambda0) or lambda0 < 0:
        raise ValueError(f"lambda0 must be a finite number >= 0, got {lambda0!r}")
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    if not math.isfinite(det_sigma):
        raise ValueError(f"det_sigma must be finite, got {det_sigma!r}")
    return lambda0 * (1.0 + gamma * det_sigma)


def squared_l2_norm(params: Iterable[Tensor]) -> Tensor:
    """``‖θ‖² = Σ_p Σ_j θ_pj²`` over the given parameter tensors (0 if there are none)."""
    terms = [p.pow(2).sum() for p in params]
    return torch.stack(terms).sum() if terms else torch.zeros(())
