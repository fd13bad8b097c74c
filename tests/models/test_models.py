"""Both detectors: shapes, training, determinism, persistence, functional_call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

from comet_pipeline.models import MODELS, build_model, load_model, save_model

C = 8
KWARGS = {"flow": {"hidden": 32, "n_blocks": 4}, "simplenet": {"hidden": 32, "noise_std": 0.5}}


def _features(batch: int = 4, views: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, views, C, 6, 6, generator=generator).half()


def _build(name: str, seed: int = 0, perturb: bool = False):
    """Seeded model; ``perturb`` moves all float weights off their (partly zero) init."""
    torch.manual_seed(seed)
    model = build_model(name, C, **KWARGS[name])
    if perturb:
        with torch.no_grad():
            for p in model.parameters():
                if p.is_floating_point():
                    p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.fixture(params=sorted(MODELS))
def name(request) -> str:
    return request.param


def test_output_shapes(name):
    model, feats = _build(name), _features()
    assert model.name == name
    assert model(feats).shape == (4,)
    assert model.score(feats).shape == (4,)
    assert model.anomaly_map(feats, (20, 24)).shape == (4, 20, 24)


def test_anomaly_map_under_no_grad_and_inference_mode(name):
    model, feats = _build(name), _features()
    with torch.no_grad():
        expected = model.anomaly_map(feats, (12, 12))
    with torch.inference_mode():
        got = model.anomaly_map(feats, (12, 12))
    torch.testing.assert_close(got, expected)
    assert torch.isfinite(got).all()


def test_loss_decreases(name):
    model, feats = _build(name), _features(batch=8)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(25):
        loss = model(feats).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < losses[0]


def test_determinism_with_seed(name):
    feats = _features()
    a, b = _build(name, seed=3), _build(name, seed=3)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)
    torch.manual_seed(7)
    loss_a = a(feats)
    torch.manual_seed(7)
    assert torch.equal(loss_a, b(feats))


def test_save_load_round_trip(name, tmp_path):
    model, feats = _build(name, perturb=True), _features()
    save_model(model, tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    assert type(loaded) is type(model) and loaded.config() == model.config()
    assert torch.equal(loaded.score(feats), model.score(feats))
    assert torch.equal(loaded.anomaly_map(feats, (8, 8)), model.anomaly_map(feats, (8, 8)))


def test_functional_call_matches_forward(name):
    model, other, feats = _build(name, seed=0, perturb=True), _build(name, seed=1, perturb=True), _features()
    params = {k: v for k, v in other.named_parameters() if v.requires_grad}
    torch.manual_seed(5)
    functional = functional_call(model, params, (feats,))
    torch.manual_seed(5)
    torch.testing.assert_close(functional, other(feats))
    torch.manual_seed(5)
    assert not torch.allclose(functional, model(feats))
    grads = torch.autograd.grad(functional.mean(), list(params.values()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_registry_and_load_errors(tmp_path):
    with pytest.raises(ValueError, match="simplenet"):
        build_model("patchcore", C)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_model(corrupt)


def test_flow_keeps_numpy_rng():
    np.random.seed(11)
    expected = np.random.rand()
    np.random.seed(11)
    _build("flow")
    assert np.random.rand() == expected
