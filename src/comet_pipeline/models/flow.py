"""DifferNet-style normalizing flow on pooled backbone features (Rudolph et al., WACV 2021).

Each view's feature map ``(C, h, w)`` is average-pooled onto a ``grid x grid`` lattice
of cells and every cell's ``C``-vector ``y`` is a sample of one shared flow. ``grid=1``
is DifferNet's global pooling; the default ``grid=14`` keeps small defects visible
(on the built-in data, whose defects cover 1-8 % of an image, global pooling scores
at chance level). A stack of ``n_blocks`` GLOW affine coupling blocks (FrEIA, soft
``atan`` clamp) each followed by a fixed random permutation maps ``y`` to ``z = f(y)``,
trained to a standard normal latent:

    NLL = mean_{views, cells} (0.5 ||z||^2 - log|det J_f(y)|) / C
    score = mean_{views} max_{cells} mean_c z_c^2     (rotation test-time augmentation)

and the anomaly map is the cell score ``mean_c z_c^2`` of view 0, upsampled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
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
        grid: int = 14,
    ) -> None:
        super().__init__()
        if in_channels < 1 or n_blocks < 1 or hidden < 1:
            raise ValueError(
                f"in_channels, n_blocks and hidden must be positive ints; got {in_channels}, {n_blocks}, {hidden}"
            )
        if grid < 1:
            raise ValueError(f"grid must be a positive int; got {grid!r}")
        if clamp <= 0:
            raise ValueError(f"clamp must be > 0; got {clamp}")
        self.in_channels = int(in_channels)
        self.grid = int(grid)
        self.dim = self.in_channels
        self._config = {"n_blocks": n_blocks, "hidden": hidden, "clamp": float(clamp), "grid": self.grid}
        self.flow = Ff.SequenceINN(self.dim)
        with _preserved_numpy_rng():
            for k in range(n_blocks):
                self.flow.append(
                    Fm.GLOWCouplingBlock, subnet_constructor=partial(_subnet, hidden=hidden), clamp=clamp
                )
                self.flow.append(Fm.PermuteRandom, seed=k)
        logger.debug("DifferNetFlow: D=%d, %d blocks, hidden=%d", self.dim, n_blocks, hidden)

    def embed(self, features: Tensor) -> Tensor:
        """Cell vectors ``(B, R, G, C)`` (``G = grid²``) of features ``(B, R, C, h, w)``."""
        if features.ndim != 5 or features.shape[2] != self.in_channels:
            raise ValueError(
                f"features must have shape (B, R, {self.in_channels}, h, w); got {tuple(features.shape)}"
            )
        cells = F.adaptive_avg_pool2d(features.flatten(0, 1).float(), self.grid)  # (B*R, C, g, g)
        return cells.flatten(2).transpose(1, 2).unflatten(0, (-1, features.shape[1]))  # -1: dynamic batch in exports

    def latent(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(z, log|det J|)`` with shapes ``(B, R, G, C)`` and ``(B, R, G)``."""
        y = self.embed(features)
        z, log_jac_det = self.flow(y.flatten(0, 2))
        return z.reshape_as(y), log_jac_det.reshape_as(y[..., 0])

    def forward(self, features: Tensor) -> Tensor:
        """Per-sample NLL ``mean_{r,g} (0.5 ||z||^2 - log|det J|) / C``, shape ``(B,)``."""
        z, log_jac_det = self.latent(features)
        return ((0.5 * z.pow(2).sum(-1) - log_jac_det) / self.dim).mean((1, 2))

    def cell_scores(self, features: Tensor) -> Tensor:
        """``mean_c z_c^2`` per view and cell, shape ``(B, R, grid, grid)``."""
        z, _ = self.latent(features)
        return z.pow(2).mean(-1).unflatten(-1, (self.grid, self.grid))

    def score(self, features: Tensor) -> Tensor:
        """Image score ``mean_r max_g mean_c z^2``, shape ``(B,)``."""
        return self.cell_scores(features).flatten(2).amax(-1).mean(1)

    def anomaly_map(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        """Cell scores of view 0 (the unrotated image) bilinearly upsampled to ``size``; ``(B, H, W)``."""
        cells = self.cell_scores(features[:, :1])
        return F.interpolate(cells, size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
