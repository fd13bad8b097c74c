"""Anomaly detectors behind one interface: DifferNet-style flow and SimpleNet."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch

from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.models.flow import DifferNetFlow
from comet_pipeline.models.simplenet import SimpleNet
from comet_pipeline.safety import load_error_reason

logger = logging.getLogger(__name__)

MODELS: dict[str, type[AnomalyModel]] = {"flow": DifferNetFlow, "simplenet": SimpleNet}

__all__ = [
    "MODELS",
    "AnomalyModel",
    "DifferNetFlow",
    "SimpleNet",
    "build_model",
    "load_model",
    "model_from_payload",
    "model_payload",
    "save_model",
]


def build_model(name: str, in_channels: int, **kwargs) -> AnomalyModel:
    """Instantiate the registered model ``name`` for ``in_channels``-channel features."""
    if name not in MODELS:
        raise ValueError(f"model name must be one of {sorted(MODELS)}; got {name!r}")
    return MODELS[name](in_channels=in_channels, **kwargs)


_PAYLOAD_KEYS = frozenset({"name", "config", "in_channels", "state_dict"})


def model_payload(model: AnomalyModel) -> dict:
    """``{"name", "config", "in_channels", "state_dict"}``: tensors and plain data that rebuild ``model``."""
    return {
        "name": model.name,
        "config": model.config(),
        "in_channels": model.in_channels,
        "state_dict": model.state_dict(),
    }


def model_from_payload(payload: dict) -> AnomalyModel:
    """The model a :func:`model_payload` describes (built, weights loaded, eval mode)."""
    model = build_model(payload["name"], payload["in_channels"], **payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def save_model(model: AnomalyModel, path: str | Path) -> None:
    """Save :func:`model_payload` with ``torch.save``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model_payload(model), path)
    logger.info("Saved %s model to %s", model.name, path)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> AnomalyModel:
    """Rebuild a model saved by :func:`save_model` (``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist; expected a bundle written by save_model")
    try:
        bundle = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise ValueError(f"model file {str(path)!r}: {load_error_reason(err)}; expected a bundle written by save_model") from err
    if not isinstance(bundle, dict) or not _PAYLOAD_KEYS <= bundle.keys():
        raise ValueError(
            f"model file {str(path)!r} is not a save_model bundle: expected a dict with keys {sorted(_PAYLOAD_KEYS)}"
        )
    return model_from_payload(bundle).to(map_location)
