"""Backbones: offline weights, checksum verification, errors, feature shapes."""

from __future__ import annotations

import pytest
import torch

from comet_pipeline.features.backbones import (
    BackboneSpec,
    FeatureExtractor,
    WeightsChecksumError,
    resolve_weights_path,
    verify_weights,
)


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return FeatureExtractor(BackboneSpec(resolution=64))


def test_default_spec_uses_stride_8_and_16_layers():
    spec = BackboneSpec()
    assert spec.layers == ("features.6", "features.13")
    assert BackboneSpec("wide_resnet50_2").layers == ("layer2", "layer3")


def test_package_weights_pass_checksum():
    path, digest = verify_weights(BackboneSpec())
    assert path.name == "mobilenet_v2-b0353104.pth"
    assert digest.startswith("b0353104")


def test_pretrained_weights_really_loaded(extractor):
    state_dict = torch.load(resolve_weights_path(BackboneSpec()), map_location="cpu", weights_only=True)
    loaded = extractor.body.state_dict()
    for key in ("features.0.0.weight", "features.13.conv.2.weight"):
        assert torch.equal(loaded[key], state_dict[key])
    assert extractor.weights_sha256.startswith("b0353104")


def test_extractor_shapes_and_frozen(extractor):
    assert extractor.out_channels == 32 + 96
    assert extractor.grid == (8, 8)
    extractor.train()
    assert not extractor.training and not extractor.body.training
    assert not any(p.requires_grad for p in extractor.parameters())
    with torch.inference_mode():
        out = extractor(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 128, 8, 8)


def test_checksum_mismatch_raises(tmp_path):
    fake = tmp_path / "mobilenet_v2-b0353104.pth"
    fake.write_bytes(b"not the real weights")
    with pytest.raises(WeightsChecksumError, match="b0353104"):
        verify_weights(BackboneSpec(weights_path=str(fake)))


def test_missing_weights_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights_path"):
        FeatureExtractor(BackboneSpec("wide_resnet50_2"))
    missing = tmp_path / "alexnet-owt-7be5be79.pth"
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        FeatureExtractor(BackboneSpec("alexnet", weights_path=str(missing)))


def test_unknown_backbone_and_layer_errors():
    with pytest.raises(ValueError, match="mobilenet_v2"):
        BackboneSpec("resnet1000")
    with pytest.raises(ValueError, match="not_a_layer"):
        FeatureExtractor(BackboneSpec(layers=("features.6", "not_a_layer"), resolution=64))
