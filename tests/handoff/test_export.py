"""TorchScript and ONNX exports of backbone + detector match the PyTorch scores."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from comet_pipeline.bundle import META_FILE
from comet_pipeline.export import export_onnx, export_torchscript
from comet_pipeline.features.cache import load_resized, rotate


def test_rotate_equals_rot90():
    x = torch.rand(2, 3, 5, 5)
    for angle in (0, 90, 180, 270, 450, -90):
        assert torch.equal(rotate(x, angle), torch.rot90(x, k=(angle // 90) % 4, dims=(2, 3)))


def _images(paths, resolution):
    return torch.stack([load_resized(p, resolution) for p in paths]).float() / 255.0


def test_torchscript_parity(bundle, image_paths, tmp_path):
    path = export_torchscript(bundle, tmp_path / "model.ts", verify=False)  # checked below
    extra = {META_FILE: ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra[META_FILE])["threshold"] == repr(bundle.meta.calibration.threshold)
    want = bundle.score_images(image_paths, batch_size=8)
    with torch.no_grad():
        scores, maps = module(_images(image_paths, bundle.meta.backbone.resolution))
    np.testing.assert_allclose(scores.numpy(), want.scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(maps.numpy(), want.maps, rtol=1e-4, atol=1e-4)


def test_onnx_parity(bundle, image_paths, tmp_path):
    path = export_onnx(bundle, tmp_path / "model.onnx", verify=False)  # checked below
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert float(metadata["threshold"]) == bundle.meta.calibration.threshold
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = bundle.score_images(image_paths, batch_size=8)
    scores, maps = session.run(None, {"images": _images(image_paths, bundle.meta.backbone.resolution).numpy()})
    np.testing.assert_allclose(scores, want.scores, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(maps, want.maps, rtol=1e-3, atol=1e-3)
