"""The interface every detector implements, so one trainer (and CoMet) serves all.

Features arrive as a tensor ``(B, R, C, h, w)``: ``R`` views of each image
(rotations for test-time augmentation; ``R = 1`` when the model uses none), each a
``C``-channel backbone feature map of ``h x w`` cells (see
``comet_pipeline.features``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn


class AnomalyModel(nn.Module, ABC):
    """A detector trainable by gradient descent on per-sample losses.

    ``forward`` returns the per-sample training loss ``L_AD(x_i)`` with shape
    ``(B,)`` so that the trainer can weight it (CoMet) and so that
    ``torch.func.functional_call`` can evaluate it at other parameters θ'
    (meta-learning). Any randomness (e.g. synthetic anomalies) must come from
    the global torch RNG so that seeding makes training reproducible.
    """

    #: registry name, e.g. ``"flow"`` or ``"simplenet"``
    name: str = "base"
    #: whether the model uses every view ``R`` (rotation TTA) or only view 0
    multi_view: bool = True

    @abstractmethod
    def forward(self, features: Tensor) -> Tensor:
        """Per-sample training loss, shape ``(B,)``."""

    @abstractmethod
    def score(self, features: Tensor) -> Tensor:
        """Image anomaly score, shape ``(B,)``; higher means more anomalous."""

    @abstractmethod
    def anomaly_map(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        """Pixel anomaly map resized to ``size = (H, W)``, shape ``(B, H, W)``."""

    def config(self) -> dict:
        """Constructor keyword arguments that rebuild this model (saved in bundles)."""
        return dict(getattr(self, "_config", {}))
