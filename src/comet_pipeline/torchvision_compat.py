"""Import torchvision on a CPU torch whose build lacks torchvision's C++ ops.

The registry's torchvision 0.28.0 wheel, next to the local ``torch==2.13.0+cpu``
wheel, fails at import with ``operator torchvision::nms does not exist``: its
Python side registers fake kernels for ``nms``/``qnms`` before the C++ extension
has defined their schemas. Defining the two schemas first lets the import
succeed; models and transforms work, ``torchvision.ops``/``torchvision.io`` do
not (this project reads images with PIL). Where torchvision imports normally
(e.g. a CUDA machine with a matching pair) this module does nothing.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library: torch.library.Library | None = None


def import_torchvision() -> ModuleType:
    """Return the ``torchvision`` module, registering missing op schemas if needed."""
    global _library
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
    _library = torch.library.Library("torchvision", "DEF")  # kept alive for the process
    for schema in _SCHEMAS:
        _library.define(schema)
    for name in [m for m in sys.modules if m.startswith("torchvision")]:
        del sys.modules[name]  # drop the half-initialised package before retrying
    return importlib.import_module("torchvision")
