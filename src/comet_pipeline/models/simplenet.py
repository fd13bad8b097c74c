"""SimpleNet (Liu et al., CVPR 2023) on cached backbone features (view 0).

For each cell of the feature map ``x`` (``C x h x w``):

    a = AvgPool3x3(x)                 (local aggregation, stride 1, same padding)
    q = W a + b                       (feature adaptor, Linear C -> P)
    q- = q + eps,  eps ~ N(0, noise_std^2 I)   (synthetic anomaly, global torch RNG)
    L = mean_cells [ max(0, th - D(q)) + max(0, th + D(q-)) ]   (truncated L1, th = 0.5)

with the discriminator ``D = Linear(P, hidden) -> LeakyReLU(0.2) -> Linear(hidden, 1)``
(no BatchNorm, so per-sample losses and ``torch.func.functional_call`` stay clean).
Cell anomaly score ``s = -D(q)``.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from comet_pipeline.models.base import AnomalyModel

logger = logging.getLogger(__name__)


def gaussian_smooth(maps: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian filter of ``maps`` ``(B, H, W)``: kernel ``exp(-k^2 / 2 sigma^2)``, ``|k| <= 4 sigma``.

    Borders are replicated; ``sigma <= 0`` returns ``maps`` unchanged.
    """
    if sigma <= 0:
        return maps
    radius = int(math.ceil(4.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.pad(maps[:, None], (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x[:, 0]


class SimpleNet(AnomalyModel):
    """Feature adaptor + discriminator trained against Gaussian-noise anomalies; see module docstring."""

    name = "simplenet"
    multi_view = False  # uses view 0 only

    def __init__(
        self,
        in_channels: int,
        proj_dim: int | None = None,
        hidden: int = 1024,
        noise_std: float = 0.015,
        threshold: float = 0.5,
        sigma: float = 4.0,
    ) -> None:
        super().__init__()
        proj_dim = in_channels if proj_dim is None else proj_dim
        if in_channels < 1 or proj_dim < 1 or hidden < 1:
            raise ValueError(
                f"in_channels, proj_dim and hidden must be positive ints; got {in_channels}, {proj_dim}, {hidden}"
            )
        if noise_std <= 0:
            raise ValueError(f"noise_std must be > 0; got {noise_std}")
        self.in_channels = int(in_channels)
        self.noise_std = float(noise_std)
        self.threshold = float(threshold)
        self.sigma = float(sigma)
        self._config = {
            "proj_dim": int(proj_dim),
            "hidden": int(hidden),
            "noise_std": self.noise_std,
            "threshold": self.threshold,
            "sigma": self.sigma,
        }
        self.adaptor = nn.Linear(self.in_channels, proj_dim)
        self.discriminator = nn.Sequential(nn.Linear(proj_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def adapted(self, features: Tensor) -> Tensor:
        """Adapted features ``q`` of view 0, shape ``(B, h, w, P)``."""
        if features.ndim != 5 or features.shape[2] != self.in_channels:
            raise ValueError(
                f"features must have shape (B, R, {self.in_channels}, h, w); got {tuple(features.shape)}"
            )
        x = F.avg_pool2d(features[:, 0].float(), kernel_size=3, stride=1, padding=1, count_include_pad=False)
        return self.adaptor(x.permute(0, 2, 3, 1))

    def forward(self, features: Tensor) -> Tensor:
        """Per-sample truncated-L1 loss ``mean_cells max(0, th - D(q)) + max(0, th + D(q + eps))``, ``(B,)``."""
        true = self.adapted(features)
        fake = true + self.noise_std * torch.randn_like(true)
        loss = F.relu(self.threshold - self.discriminator(true)) + F.relu(self.threshold + self.discriminator(fake))
        return loss.flatten(1).mean(1)

    def cell_scores(self, features: Tensor) -> Tensor:
        """Cell anomaly scores ``-D(q)``, shape ``(B, h, w)``."""
        return -self.discriminator(self.adapted(features))[..., 0]

    def score(self, features: Tensor) -> Tensor:
        """Image score: max over cells of ``-D(q)`` at the feature grid (unsmoothed, as SimpleNet's code), ``(B,)``."""
        return self.cell_scores(features).flatten(1).amax(1)

    def anomaly_map(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        """Cell scores bilinearly upsampled to ``size`` then Gaussian-smoothed (``sigma`` px), ``(B, H, W)``."""
        cells = self.cell_scores(features)[:, None]
        upsampled = F.interpolate(cells, size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
        return gaussian_smooth(upsampled, self.sigma)
