"""Metrics against independent references and hand-computed cases."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from scipy.integrate import trapezoid
from skimage.measure import label as skimage_label
from sklearn.metrics import roc_auc_score

from comet_pipeline.evaluation.metrics import (
    aupro,
    binary_metrics,
    curation_auroc,
    evaluate,
    f1_max,
    image_auroc,
    oracle_threshold_metrics,
    pixel_auroc,
    threshold_from_scores,
)


@pytest.fixture
def ranking() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores = rng.normal(size=60) + labels + rng.integers(0, 3, 60)  # overlapping classes, some ties
    return labels, np.round(scores, 1)


@pytest.fixture
def pixels() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    masks = np.zeros((3, 16, 16), dtype=bool)
    masks[0, 2:6, 3:8] = True
    masks[0, 10:12, 10:15] = True
    masks[1, 8:14, 1:4] = True
    maps = rng.random(masks.shape) + 0.8 * masks
    return masks, maps


def brute_force_f1_max(labels: np.ndarray, scores: np.ndarray) -> float:
    best = 0.0
    for t in np.unique(scores):
        predicted = scores >= t
        tp = np.sum(predicted & (labels == 1))
        if tp:
            precision, recall = tp / predicted.sum(), tp / labels.sum()
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def reference_aupro(masks: np.ndarray, maps: np.ndarray, limit: float, num: int) -> float:
    """Per-image skimage labelling and a Python loop over thresholds."""
    regions = [r for m in masks for r in _regions(m)]
    index = [i for i, m in enumerate(masks) for _ in _regions(m)]
    points = [(0.0, 0.0)]
    for t in np.linspace(maps.min(), maps.max(), num)[::-1]:
        positive = maps >= t
        pro = np.mean([positive[i][r].mean() for i, r in zip(index, regions)])
        points.append((positive[~masks].mean(), pro))
    fpr, pro = np.array(points).T
    keep = fpr <= limit
    x = np.append(fpr[keep], limit)
    y = np.append(pro[keep], np.interp(limit, fpr, pro))
    return trapezoid(y, x) / limit


def _regions(mask: np.ndarray) -> list[np.ndarray]:
    labelled = skimage_label(mask, connectivity=2)
    return [labelled == k for k in range(1, labelled.max() + 1)]


def test_image_auroc_matches_sklearn(ranking):
    labels, scores = ranking
    assert image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_pixel_auroc_matches_sklearn_on_flattened_pixels(pixels):
    masks, maps = pixels
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-9)


def test_pixel_metrics_nan_without_masks(caplog, pixels):
    _, maps = pixels
    with caplog.at_level(logging.INFO, logger="comet_pipeline.evaluation.metrics"):
        assert math.isnan(pixel_auroc(None, maps))
        assert math.isnan(aupro(None, maps))
    assert "not available" in caplog.text


def test_single_class_and_shape_errors(pixels):
    masks, maps = pixels
    with pytest.raises(ValueError, match="both classes"):
        image_auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"\(3, 16, 16\).*\(3, 16, 15\)"):
        pixel_auroc(masks, maps[..., :15])
    with pytest.raises(ValueError, match="3 entries but scores have 2"):
        f1_max([0, 1, 1], [0.1, 0.2])


def test_aupro_perfect_map_is_one(pixels):
    masks, _ = pixels
    assert aupro(masks, masks.astype(float)) == pytest.approx(1.0)


def test_aupro_constant_map_is_half_the_limit(pixels):
    masks, _ = pixels
    assert aupro(masks, np.full(masks.shape, 0.7)) == pytest.approx(0.15)
    assert aupro(masks, np.zeros(masks.shape), fpr_limit=0.1) == pytest.approx(0.05)


def test_aupro_two_regions_by_hand():
    # Region A = {(0,0)} scored 1; region B = {(3,2), (3,3)} scored 1 and 0.5; 13 nominal
    # pixels, two of them at 0.5. Thresholds (0, 0.5, 1) give the curve
    # (0,0) -> (0, 0.75) -> (2/13, 1) -> (1, 1).
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0, 0] = masks[0, 3, 2] = masks[0, 3, 3] = True
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = maps[0, 3, 2] = 1.0
    maps[0, 3, 3] = maps[0, 1, 1] = maps[0, 1, 2] = 0.5
    expected = ((0.75 + 1) / 2 * 2 / 13 + (0.3 - 2 / 13)) / 0.3
    assert aupro(masks, maps, num_thresholds=3) == pytest.approx(expected)
    # limit inside the first segment: PRO interpolated to 0.875 at FPR 1/13
    assert aupro(masks, maps, fpr_limit=1 / 13, num_thresholds=3) == pytest.approx((0.75 + 0.875) / 2)


def test_aupro_uses_8_connectivity_within_images_only():
    # Image 0: diagonal pixels (0,0), (1,1), (1,2) form ONE 8-connected region of 3 (PRO 1/3 at t=1).
    # Image 1: one pixel at (0,0), scored 0; it must not join image 0's region.
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 1, 2] = masks[1, 0, 0] = True
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0] = 1.0
    # thresholds (0, 1): curve (0,0) -> (0, 1/6) -> (1, 1); PRO at 0.3 = 1/6 + 0.3 * 5/6 = 5/12
    expected = (1 / 6 + 5 / 12) / 2
    assert aupro(masks, maps, num_thresholds=2) == pytest.approx(expected)


def test_aupro_matches_loop_reference(pixels):
    masks, maps = pixels
    assert aupro(masks, maps, num_thresholds=50) == pytest.approx(reference_aupro(masks, maps, 0.3, 50))


def test_aupro_nan_without_regions():
    assert math.isnan(aupro(np.zeros((2, 4, 4), dtype=bool), np.random.default_rng(0).random((2, 4, 4))))


def test_f1_max_matches_brute_force(ranking):
    labels, scores = ranking
    assert f1_max(labels, scores) == pytest.approx(brute_force_f1_max(labels, scores))


def test_threshold_methods():
    scores = np.arange(1.0, 10.0)  # Q1 = 3, Q3 = 7
    assert threshold_from_scores(scores) == pytest.approx(7 + 1.5 * 4)
    assert threshold_from_scores(scores, kappa=0.5) == pytest.approx(9)
    assert threshold_from_scores(scores, method="quantile", quantile=0.5) == pytest.approx(5)
    with pytest.raises(ValueError, match="unknown threshold method 'mad'"):
        threshold_from_scores(scores, method="mad")


def test_binary_metrics_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.6, 0.5, 0.9, 0.3, 0.2, 0.5])
    # predicted (>= 0.5): [0,0,1,1,1,0,0,1] -> TP 3, FP 1, FN 1, TN 3
    result = binary_metrics(labels, scores, 0.5)
    assert result == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75, "accuracy": 0.75})
    assert binary_metrics(labels, scores, 2.0) == pytest.approx(
        {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.5}
    )


def test_oracle_threshold_reaches_f1_max(ranking):
    labels, scores = ranking
    oracle = oracle_threshold_metrics(labels, scores)
    assert set(oracle) == {f"oracle_{k}" for k in ("threshold", "precision", "recall", "f1", "accuracy")}
    assert oracle["oracle_f1"] == pytest.approx(f1_max(labels, scores))


def test_curation_auroc():
    weights = np.array([1.0, 0.9, 0.2, 0.95, 0.5, 0.3])
    injected = np.array([False, False, True, False, False, True])
    assert curation_auroc(injected, weights) == pytest.approx(1.0)
    assert curation_auroc(injected, 1 - weights) == pytest.approx(0.0)
    assert math.isnan(curation_auroc(np.zeros(6, dtype=bool), weights))


def test_evaluate_keys_and_values(ranking, pixels):
    labels, scores = ranking
    masks, maps = pixels
    result = evaluate(labels, scores, masks, maps, threshold=1.0)
    expected_keys = {"i_auroc", "p_auroc", "aupro", "f1_max", "precision", "recall", "f1", "threshold"}
    assert expected_keys | {k for k in result if k.startswith("oracle_")} == set(result)
    assert result["threshold"] == 1.0
    assert result["f1"] == pytest.approx(binary_metrics(labels, scores, 1.0)["f1"])
    assert result["aupro"] == pytest.approx(aupro(masks, maps))
    without_pixels = evaluate(labels, scores)
    assert math.isnan(without_pixels["p_auroc"]) and math.isnan(without_pixels["aupro"])
    assert math.isnan(without_pixels["f1"]) and without_pixels["i_auroc"] == result["i_auroc"]
