"""Kedro datasets for trained models (one safe weights file per model) and model bundles.

Each model is written by :func:`comet_pipeline.models.save_model` (a
``torch.save`` of tensors and plain config, read back with
``torch.load(weights_only=True)``), never pickled objects.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from comet_pipeline.bundle import META_FILE, Bundle, BundleMeta, load_bundle, save_bundle
from comet_pipeline.models import load_model, save_model
from comet_pipeline.models.base import AnomalyModel


class ModelDirectoryDataset(AbstractDataset[dict[str, AnomalyModel], dict[str, AnomalyModel]]):
    """``{name: model}`` saved as ``<path>/<name>.pt``."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, AnomalyModel]:
        files = sorted(self._path.glob("*.pt"))
        if not files:
            raise FileNotFoundError(f"no model files (*.pt) in {self._path}; run the training pipeline first")
        return {f.stem: load_model(f) for f in files}

    def save(self, data: dict[str, AnomalyModel]) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, model in data.items():
            save_model(model, tmp / f"{name}.pt")
        shutil.rmtree(self._path, ignore_errors=True)
        tmp.replace(self._path)

    def _exists(self) -> bool:
        return any(self._path.glob("*.pt"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class BundleDirectoryDataset(AbstractDataset[dict[str, tuple[AnomalyModel, BundleMeta]], dict[str, Bundle]]):
    """Model bundles saved as ``<path>/<name>/`` by :func:`comet_pipeline.bundle.save_bundle`.

    ``save`` takes ``{name: (model, meta)}`` and replaces the whole folder; ``load``
    returns ``{name: Bundle}`` (each with its verified backbone).
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, Bundle]:
        dirs = sorted(p.parent for p in self._path.glob(f"*/{META_FILE}"))
        if not dirs:
            raise FileNotFoundError(f"no model bundles (*/{META_FILE}) in {self._path}; run the export pipeline first")
        return {d.name: load_bundle(d) for d in dirs}

    def save(self, data: dict[str, tuple[AnomalyModel, BundleMeta]]) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, (model, meta) in data.items():
            save_bundle(tmp / name, model, meta)
        shutil.rmtree(self._path, ignore_errors=True)
        tmp.replace(self._path)

    def _exists(self) -> bool:
        return any(self._path.glob(f"*/{META_FILE}"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
