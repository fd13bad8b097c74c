"""Anomaly-detection metrics: I-AUROC, P-AUROC, AUPRO, F1-max and label-free thresholds.

Conventions: ``labels`` are 0 (nominal) / 1 (anomalous), ``scores`` and ``maps``
are higher-is-more-anomalous, ``masks`` are boolean ground-truth pixel masks
``(N, H, W)`` aligned with ``maps``. A score ``>= threshold`` is predicted anomalous.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage
from scipy.integrate import trapezoid
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

logger = logging.getLogger(__name__)

#: 8-connectivity within each image, no connection between images of a stack.
_IN_PLANE_8 = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE_8[1] = True


def _labels_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Flatten and validate a (labels, scores) pair for a binary ranking metric."""
    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels have {y.size} entries but scores have {s.size}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    if y.all() or not y.any():
        raise ValueError(
            "AUROC (and F1-max) needs both classes, nominal and anomalous, in the labels; "
            f"got only {'anomalous' if y.any() else 'nominal'} ({y.size} samples)"
        )
    return y, s


def image_auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Image-level AUROC = P(score of a random anomalous > score of a random nominal) (ties count 1/2)."""
    y, s = _labels_scores(labels, scores)
    return float(roc_auc_score(y, s))


def _pixel_inputs(masks: ArrayLike | None, maps: ArrayLike | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Validated ``(masks, maps)`` as ``(N, H, W)`` arrays, or ``None`` (logged) when either is missing."""
    if masks is None or maps is None:
        logger.info("pixel metrics not available: %s missing", "masks" if masks is None else "anomaly maps")
        return None
    m = np.asarray(masks).astype(bool)
    a = np.asarray(maps, dtype=np.float32)
    if m.shape != a.shape:
        raise ValueError(f"masks have shape {m.shape} but anomaly maps have shape {a.shape}; they must match")
    if m.ndim != 3:
        raise ValueError(f"masks and anomaly maps must have shape (N, H, W); got {m.shape}")
    return m, a


def pixel_auroc(masks: ArrayLike | None, maps: ArrayLike | None) -> float:
    """Pixel-level AUROC over all pixels of all images; ``nan`` when masks or maps are unavailable."""
    inputs = _pixel_inputs(masks, maps)
    if inputs is None:
        return float("nan")
    return image_auroc(*inputs)


def aupro(
    masks: ArrayLike | None,
    maps: ArrayLike | None,
    fpr_limit: float = 0.3,
    num_thresholds: int = 200,
) -> float:
    """Normalised area under the per-region-overlap curve (Bergmann et al., MVTec AD).

    Ground-truth regions ``R_k`` are the 8-connected components of each mask.
    For each threshold ``t`` in ``linspace(min(maps), max(maps), num_thresholds)``:
    ``PRO(t) = mean_k |{p in R_k : map(p) >= t}| / |R_k|`` and
    ``FPR(t) = |{p nominal : map(p) >= t}| / |{p nominal}|``. The curve starts at
    ``(0, 0)`` (threshold above every score); ``AUPRO = (1 / fpr_limit) *
    integral_0^fpr_limit PRO dFPR`` by the trapezoid rule, the PRO at exactly
    ``fpr_limit`` linearly interpolated. A perfect map gives 1, a constant map
    ``fpr_limit / 2``. ``nan`` when masks/maps are unavailable or have no regions.
    """
    if not 0 < fpr_limit <= 1:
        raise ValueError(f"fpr_limit must be in (0, 1]; got {fpr_limit}")
    if num_thresholds < 2:
        raise ValueError(f"num_thresholds must be at least 2; got {num_thresholds}")
    inputs = _pixel_inputs(masks, maps)
    if inputs is None:
        return float("nan")
    m, a = inputs
    regions, num_regions = ndimage.label(m, structure=_IN_PLANE_8)
    if num_regions == 0:
        logger.info("AUPRO not available: the ground-truth masks contain no anomalous region")
        return float("nan")
    if m.all():
        raise ValueError("AUPRO needs nominal pixels to compute the false-positive rate; every mask pixel is anomalous")

    thresholds = np.linspace(a.min(), a.max(), num_thresholds)
    # level[p] = number of thresholds <= map(p): pixel p is positive at threshold k iff k < level[p].
    level = np.searchsorted(thresholds, a.ravel(), side="right")
    # counts[r, l] = pixels of region r (0 = nominal) at level l; positives[r, k] = sum_{l > k} counts[r, l].
    counts = np.bincount(
        regions.ravel() * (num_thresholds + 1) + level, minlength=(num_regions + 1) * (num_thresholds + 1)
    ).reshape(num_regions + 1, num_thresholds + 1)
    positives = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1][:, 1:]  # (regions + 1, thresholds)
    rates = positives / counts.sum(axis=1, keepdims=True)
    # thresholds descending, so both FPR and PRO are non-decreasing; prepend the (0, 0) point.
    fpr = np.concatenate(([0.0], rates[0, ::-1]))
    pro = np.concatenate(([0.0], rates[1:, ::-1].mean(axis=0)))

    inside = int(np.searchsorted(fpr, fpr_limit, side="right"))  # fpr[:inside] <= fpr_limit
    if inside < fpr.size:
        pro_at_limit = np.interp(fpr_limit, fpr[inside - 1 : inside + 1], pro[inside - 1 : inside + 1])
        fpr = np.append(fpr[:inside], fpr_limit)
        pro = np.append(pro[:inside], pro_at_limit)
    return float(trapezoid(pro, fpr) / fpr_limit)


def _best_f1(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """``(max_t F1(t), argmax threshold)`` over all score thresholds, ``F1 = 2PR / (P + R)``."""
    y, s = _labels_scores(labels, scores)
    precision, recall, thresholds = precision_recall_curve(y, s)
    # the last (precision=1, recall=0) point has no threshold
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


def f1_max(labels: ArrayLike, scores: ArrayLike) -> float:
    """Best image-level F1 over all thresholds: ``max_t 2 P(t) R(t) / (P(t) + R(t))``."""
    return _best_f1(labels, scores)[0]


def threshold_from_scores(
    scores: ArrayLike, method: str = "iqr", kappa: float = 1.5, quantile: float = 0.95
) -> float:
    """Label-free threshold from training/validation scores only.

    ``"iqr"``: ``Q3 + kappa * (Q3 - Q1)`` (Tukey fence); ``"quantile"``: ``np.quantile(scores, quantile)``.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("threshold_from_scores needs at least one score")
    if method == "iqr":
        q1, q3 = np.quantile(s, [0.25, 0.75])
        return float(q3 + kappa * (q3 - q1))
    if method == "quantile":
        if not 0 <= quantile <= 1:
            raise ValueError(f"quantile must be in [0, 1]; got {quantile}")
        return float(np.quantile(s, quantile))
    raise ValueError(f"unknown threshold method {method!r}; expected 'iqr' or 'quantile'")


def binary_metrics(labels: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float]:
    """Precision, recall, F1 and accuracy of the prediction ``score >= threshold`` (0 where undefined)."""
    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels have {y.size} entries but scores have {s.size}")
    predicted = s >= threshold
    return {
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y, predicted)),
    }


def oracle_threshold_metrics(labels: ArrayLike, scores: ArrayLike) -> dict[str, float]:
    """ORACLE: binary metrics at the threshold maximising F1 on the *test labels* themselves.

    Optimistic by construction (uses ground truth to pick the threshold); report it
    only next to the label-free threshold. Keys: ``oracle_threshold``,
    ``oracle_precision``, ``oracle_recall``, ``oracle_f1``, ``oracle_accuracy``.
    """
    threshold = _best_f1(labels, scores)[1]
    metrics = {"threshold": threshold, **binary_metrics(labels, scores, threshold)}
    return {f"oracle_{key}": value for key, value in metrics.items()}


def curation_auroc(injected: ArrayLike, weights: ArrayLike) -> float:
    """AUROC of ``1 - w`` for finding the injected anomalies among the training images; ``nan`` if none injected."""
    is_injected = np.asarray(injected).ravel().astype(bool)
    if not is_injected.any():
        logger.info("curation AUROC not available: no injected training images")
        return float("nan")
    return image_auroc(is_injected, 1.0 - np.asarray(weights, dtype=np.float64))


def evaluate(
    labels: ArrayLike,
    scores: ArrayLike,
    masks: ArrayLike | None = None,
    maps: ArrayLike | None = None,
    threshold: float | None = None,
) -> dict[str, float]:
    """All test metrics as flat keys.

    ``i_auroc, p_auroc, aupro, f1_max`` plus ``precision, recall, f1, threshold``
    at the given label-free ``threshold`` (all ``nan`` when it is ``None``) and the
    ``oracle_*`` metrics of :func:`oracle_threshold_metrics`. Pixel metrics are
    ``nan`` when masks or maps are unavailable.
    """
    result = {
        "i_auroc": image_auroc(labels, scores),
        "p_auroc": pixel_auroc(masks, maps),
        "aupro": aupro(masks, maps),
        "f1_max": f1_max(labels, scores),
    }
    if threshold is None:
        result.update(precision=float("nan"), recall=float("nan"), f1=float("nan"), threshold=float("nan"))
    else:
        at_threshold = binary_metrics(labels, scores, threshold)
        result.update(
            precision=at_threshold["precision"],
            recall=at_threshold["recall"],
            f1=at_threshold["f1"],
            threshold=float(threshold),
        )
    result.update(oracle_threshold_metrics(labels, scores))
    return result
