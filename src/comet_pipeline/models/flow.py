"""DifferNet-style normalizing flow on pooled backbone features (Rudolph et al., WACV 2021).

Each view's feature map ``(C, h, w)`` is average-pooled onto grids of ``pool_sizes``
cells (default 1x1 and 2x2: the global mean plus the quadrant means) and flattened
into ``y`` of dimension ``D = C * sum(s^2)``. A stack of ``n_blocks`` GLOW affine coupling
blocks (FrEIA, soft ``atan`` clamp) each followed by a fixed random permutation maps
``y`` to ``z = f(y)``, trained to a standard normal latent:

    NLL(y) = (0.5 * ||z||^2 - log|det J_f(y)|) / D,   score(y) = mean(z^2),

both averaged over the ``R`` views of an image.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import FrEIA.framework as Ff
import FrEIA.modules as Fm
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from comet_pipeline.models.base import AnomalyModel

logger = logging.getLogger(__name__)


def _subnet(dims_in: int, dims_out: int, hidden: int) -> nn.Module:
    """Coupling subnet ``Linear -> ReLU -> Linear``; the last layer starts at zero (identity block)."""
    net = nn.Sequential(nn.Linear(dims_in, hidden), nn.ReLU(), nn.Linear(hidden, dims_out))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


@contextmanager
def _preserved_numpy_rng() -> Iterator[None]:
    """Restore numpy's global RNG afterwards (FrEIA's ``PermuteRandom(seed=k)`` reseeds it)."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


class DifferNetFlow(AnomalyModel):
    """Normalizing flow density on multi-scale pooled features; see the module docstring."""

    name = "flow"

    def __init__(
        self,
        in_channels: int,
        n_blocks: int = 8,
        hidden: int = 256,
        clamp: float = 3.0,
        pool_sizes: Sequence[int] = (1, 2),
    ) -> None:
        super().__init__()
        if in_channels < 1 or n_blocks < 1 or hidden < 1:
            raise ValueError(
                f"in_channels, n_blocks and hidden must be positive ints; got {in_channels}, {n_blocks}, {hidden}"
            )
        if not pool_sizes or any(int(s) < 1 for s in pool_sizes):
            raise ValueError(f"pool_sizes must be a non-empty sequence of positive ints; got {pool_sizes!r}")
        if clamp <= 0:
            raise ValueError(f"clamp must be > 0; got {clamp}")
        self.in_channels = int(in_channels)
        self.pool_sizes = tuple(int(s) for s in pool_sizes)
        self.dim = self.in_channels * sum(s * s for s in self.pool_sizes)
        self._config = {"n_blocks": n_blocks, "hidden": hidden, "clamp": float(clamp), "pool_sizes": list(self.pool_sizes)}
        self.flow = Ff.SequenceINN(self.dim)
        with _preserved_numpy_rng():
            for k in range(n_blocks):
                self.flow.append(
                    Fm.GLOWCouplingBlock, subnet_constructor=partial(_subnet, hidden=hidden), clamp=clamp
                )
                self.flow.append(Fm.PermuteRandom, seed=k)
        logger.debug("DifferNetFlow: D=%d, %d blocks, hidden=%d", self.dim, n_blocks, hidden)

    def embed(self, features: Tensor) -> Tensor:
        """Pooled vectors ``(B, R, D)`` of features ``(B, R, C, h, w)``."""
        if features.ndim != 5 or features.shape[2] != self.in_channels:
            raise ValueError(
                f"features must have shape (B, R, {self.in_channels}, h, w); got {tuple(features.shape)}"
            )
        x = features.flatten(0, 1).float()
        pooled = torch.cat([F.adaptive_avg_pool2d(x, s).flatten(1) for s in self.pool_sizes], dim=1)
        return pooled.unflatten(0, features.shape[:2])

    def latent(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(z, log|det J|)`` with shapes ``(B, R, D)`` and ``(B, R)``."""
        y = self.embed(features)
        z, log_jac_det = self.flow(y.flatten(0, 1))
        return z.unflatten(0, y.shape[:2]), log_jac_det.unflatten(0, y.shape[:2])

    def forward(self, features: Tensor) -> Tensor:
        """Per-sample NLL ``mean_r (0.5 ||z_r||^2 - log|det J_r|) / D``, shape ``(B,)``."""
        z, log_jac_det = self.latent(features)
        return ((0.5 * z.pow(2).sum(-1) - log_jac_det) / self.dim).mean(1)

    def score(self, features: Tensor) -> Tensor:
        """Image score ``mean_r mean_d z_{r,d}^2``, shape ``(B,)``."""
        z, _ = self.latent(features)
        return z.pow(2).mean(-1).mean(1)

    def anomaly_map(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        """Coarse map of view 0 (assumed unrotated): ``mean_c |x_c * d score_0 / d x_c|`` per cell.

        The gradient-times-input attribution of the view-0 score to each feature cell,
        bilinearly upsampled to ``size``; gradients are enabled locally, so it works
        inside ``torch.no_grad()``/``torch.inference_mode()``. Shape ``(B, H, W)``.
        """
        with torch.inference_mode(False), torch.enable_grad():
            x = features[:, :1].float().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.score(x).sum(), x)
            cells = (x * grad).abs().mean(dim=2).detach()  # (B, 1, h, w)
        return F.interpolate(cells, size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
