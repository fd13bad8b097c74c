"""Choosing the torch device from a config string."""

from __future__ import annotations

import logging
import re

import torch

logger = logging.getLogger(__name__)

VALID_DEVICES = ("auto", "cpu", "cuda", "cuda:<index>")


def resolve_device(device: str = "auto") -> torch.device:
    """Map ``device`` to a ``torch.device``: ``"auto"`` is CUDA when available, else CPU.

    ``"cuda"``/``"cuda:<index>"`` without a matching GPU raise ``RuntimeError``;
    any other value raises ``ValueError`` listing the valid ones.
    """
    if not isinstance(device, str):
        raise ValueError(f"device must be a string, one of {VALID_DEVICES}; got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name == "cpu":
        resolved = torch.device("cpu")
    elif re.fullmatch(r"cuda(:\d+)?", name):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device={device!r} was requested but no CUDA GPU is available "
                "(torch.cuda.is_available() is False); use device='cpu' or 'auto'"
            )
        resolved = torch.device(name)
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
    else:
        raise ValueError(f"device must be one of {VALID_DEVICES}; got {device!r}")
    logger.debug("Resolved device %r to %s", device, resolved)
    return resolved
