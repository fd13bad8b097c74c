"""Export a bundle's backbone + detector as one graph: TorchScript or ONNX.

The exported graph is :class:`comet_pipeline.bundle.ImageScorer`: input ``images``, a
float batch ``(B, 3, S, S)`` in ``[0, 1]`` at the bundle resolution ``S`` (RGB, resized
bilinearly as the feature cache does); outputs ``score (B,)`` and ``anomaly_map
(B, M, M)``. The rotation views are built inside the graph (flips and transposes,
since ONNX has no rot90); the batch size is dynamic. Both formats are traced
(``torch.jit.trace``; ONNX through the TorchScript-based exporter, ``dynamo=False``),
because torchvision's feature-extraction graph and FrEIA's flow have Python control
flow that only tracing at a fixed image size handles. The bundle's threshold and
normalisation travel with the file (TorchScript extra file ``bundle.json``, ONNX
metadata properties). Each export is re-loaded and checked against the PyTorch
scores of random images; a mismatch raises :class:`ExportError`.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from comet_pipeline.bundle import META_FILE, Bundle, ImageScorer

logger = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")
INPUT_NAME = "images"
OUTPUT_NAMES = ("score", "anomaly_map")
ONNX_OPSET = 17


class ExportError(RuntimeError):
    """An export that failed or whose outputs differ from the PyTorch model's."""


def _cpu_scorer(bundle: Bundle) -> ImageScorer:
    return bundle.scorer().cpu().eval()


def _example(bundle: Bundle, batch: int, seed: int) -> torch.Tensor:
    size = bundle.meta.backbone.resolution
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _metadata(bundle: Bundle) -> dict[str, str]:
    """Flat string metadata for the exported file (threshold, normalisation, input contract)."""
    meta, cal = bundle.meta, bundle.meta.calibration
    return {
        "model": bundle.model.name,
        "category": meta.category,
        "strategy": meta.strategy,
        "threshold": repr(cal.threshold),
        "score_median": repr(cal.median),
        "score_iqr": repr(cal.iqr),
        "input": f"float32 RGB (B, 3, {meta.backbone.resolution}, {meta.backbone.resolution}) in [0, 1]",
        "backbone_weights_sha256": meta.backbone.weights_sha256,
    }


def check_parity(
    bundle: Bundle, run: Callable[[torch.Tensor], Sequence], batch: int = 3, rtol: float = 1e-3, atol: float = 1e-4
) -> tuple[float, float]:
    """Max abs differences (score, map) of ``run(images) -> (score, map)`` vs PyTorch; ExportError past tolerance."""
    images = _example(bundle, batch, seed=1)
    with torch.inference_mode():
        want = [t.numpy() for t in _cpu_scorer(bundle)(images)]
    got = [np.asarray(a) for a in run(images)]
    diffs = []
    for name, w, g in zip(OUTPUT_NAMES, want, got):
        if w.shape != g.shape or not np.allclose(g, w, rtol=rtol, atol=atol):
            raise ExportError(
                f"exported {name} differs from PyTorch: shape {g.shape} vs {w.shape}, max |diff| "
                f"{np.max(np.abs(g - w)) if g.shape == w.shape else 'n/a'} (rtol {rtol}, atol {atol})"
            )
        diffs.append(float(np.max(np.abs(g - w))))
    return diffs[0], diffs[1]


def export_torchscript(bundle: Bundle, path: str | Path, verify: bool = True) -> Path:
    """Trace backbone + detector and save a TorchScript file (``torch.jit.load``-able); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scorer = _cpu_scorer(bundle)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(scorer, _example(bundle, 2, seed=0), check_trace=False)
    extra = {META_FILE: json.dumps(_metadata(bundle), indent=2)}
    torch.jit.save(traced, str(path), _extra_files=extra)
    if verify:
        loaded = torch.jit.load(str(path), map_location="cpu")

        def run(images: torch.Tensor) -> list[np.ndarray]:
            with torch.no_grad():
                return [t.numpy() for t in loaded(images)]

        diffs = check_parity(bundle, run)
        logger.info("TorchScript export %s: max |diff| score %.2e, map %.2e", path, *diffs)
    return path


def export_onnx(bundle: Bundle, path: str | Path, verify: bool = True) -> Path:
    """Export backbone + detector to ONNX (opset 17, dynamic batch) and check it with onnxruntime; return ``path``."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scorer = _cpu_scorer(bundle)
    batch_axis = {0: "batch"}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                scorer,
                (_example(bundle, 2, seed=0),),
                str(path),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={name: batch_axis for name in (INPUT_NAME, *OUTPUT_NAMES)},
            )
    except Exception as err:  # the exporter raises many types; name the model and the cause
        raise ExportError(f"ONNX export of {bundle.model.name} ({bundle.path}) failed: {err}") from err
    proto = onnx.load(str(path))
    for key, value in _metadata(bundle).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    if verify:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        diffs = check_parity(bundle, lambda images: session.run(None, {INPUT_NAME: images.numpy()}))
        logger.info("ONNX export %s: max |diff| score %.2e, map %.2e", path, *diffs)
    return path


def export(bundle: Bundle, path: str | Path, fmt: str, verify: bool = True) -> Path:
    """Export in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}; got {fmt!r}")
    return (export_torchscript if fmt == "torchscript" else export_onnx)(bundle, path, verify=verify)
