"""Detectors compared on the same images: paired bootstrap of mAP and FROC, as differences and as ratios.

Every detector is scored on the *same* bootstrap resamples (images, or patients when ids are given), so the
correlation between detectors scored on one test set is kept, as in :func:`osteon.metrics.paired_bootstrap_test`.
The statistics are those of :func:`osteon.metrics.detection_report`: mAP@0.5 and mAP@0.5:0.95 through
pycocotools' matching re-accumulated with bootstrap image weights, and the FROC mean sensitivity (the CPM over
1/8 … 8 FP/image).

A *ratio* ``A / B`` answers targets phrased as "twice the other detector". Its interval is the percentile
interval of the per-resample ratios: a resample where B scores 0 and A does not gives an infinite ratio (kept:
A wins it outright), one where both score 0 is undefined (dropped and counted). Quantiles are read as order
statistics (``inverted_cdf``) so that infinite ratios never enter an interpolation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from osteon.metrics._bootstrap import paired_p_value, resample_distribution, summarise
from osteon.metrics._common import MetricInputError
from osteon.metrics.detection import (
    FROC_RATES,
    BoxesLike,
    HitRule,
    _class_mean,
    _monai_sensitivity,
    _sensitivity_at_rates,
    coco_evaluate,
    froc_data,
    weighted_average_precision,
)

#: The statistics scored per detector, in table order.
DETECTION_STATISTICS = ("map50", "map50_95", "froc_mean_sensitivity")


@dataclass(frozen=True)
class ResampledDetectionScores:
    """Each detector's statistics on the full data and on shared bootstrap resamples.

    Attributes:
        point: detector → statistic → value on the full data.
        resampled: detector → statistic → ``(n_resamples,)`` values; row ``b`` of every detector is scored
            on the same resample.
    """

    point: dict[str, dict[str, float]]
    resampled: dict[str, dict[str, np.ndarray]]


def resampled_detection_scores(
    truth: Sequence[BoxesLike],
    predictions: Mapping[str, Sequence[BoxesLike]],
    *,
    n_classes: int,
    groups: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
    hit: HitRule = "iou",
) -> ResampledDetectionScores:
    """mAP@0.5, mAP@0.5:0.95 and FROC mean sensitivity of several detectors on the same resamples.

    Args:
        truth: Per-image true boxes.
        predictions: detector name → per-image predicted boxes (same images, same order as ``truth``).
        n_classes: Number of classes (labels ``0..n_classes-1``).
        groups: ``(N,)`` patient ids: patients are resampled (all their images come along); None: images.
        n_resamples: Bootstrap resamples, shared by every detector.
        seed: Resampling seed.
        hit: FROC hit rule, ``"iou"`` (IoU ≥ 0.5) or ``"center"``.

    Raises:
        MetricInputError: no detector, or a detector whose predictions do not match ``truth``.
    """
    if not predictions:
        raise MetricInputError("predictions is empty: pass at least one detector's boxes, e.g. {'model': boxes}.")
    rates = list(FROC_RATES)
    stat_fns, point = {}, {}
    for name, boxes in predictions.items():
        coco = coco_evaluate(truth, boxes, n_classes=n_classes)  # checks the inputs
        froc = froc_data(truth, boxes, hit=hit)
        stat_fns[f"{name}\0ap"] = lambda w, c=coco: weighted_average_precision(c, w)
        stat_fns[f"{name}\0froc"] = lambda w, f=froc: _sensitivity_at_rates(f, w, rates)
        point[name] = {
            "map50": coco.map50,
            "map50_95": coco.map50_95,
            "froc_mean_sensitivity": float(np.mean(_monai_sensitivity(froc, rates))),  # as detection_report
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dist = resample_distribution(stat_fns, len(truth), groups=groups, n_resamples=n_resamples, seed=seed)
    resampled = {}
    for name in predictions:
        ap = dist[f"{name}\0ap"]  # (B, T, K)
        resampled[name] = {
            "map50": _class_mean(ap[:, 0, :]),
            "map50_95": _class_mean(ap.mean(axis=1)),
            "froc_mean_sensitivity": dist[f"{name}\0froc"].mean(axis=1),
        }
    return ResampledDetectionScores(point=point, resampled=resampled)


def ratio_interval(
    estimate_a: float,
    estimate_b: float,
    values_a: np.ndarray,
    values_b: np.ndarray,
    *,
    confidence: float = 0.95,
) -> dict[str, float | int]:
    """The ratio ``A / B`` on the full data with the percentile interval of the per-resample ratios.

    ``B = 0 < A`` gives ``inf``; ``A = B = 0`` (or a nan) is undefined: such resamples are dropped and not
    counted in ``n_valid``. Returns ``{estimate, low, high, n_resamples, n_valid}`` (nan bounds when no
    resample is defined).
    """
    estimate = float(_ratio(np.array([estimate_a]), np.array([estimate_b]))[0])
    ratios = _ratio(np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float))
    valid = ratios[~np.isnan(ratios)]
    alpha = 1.0 - confidence
    if len(valid):
        low, high = (float(q) for q in np.quantile(valid, [alpha / 2, 1 - alpha / 2], method="inverted_cdf"))
    else:
        low = high = float("nan")
    return {"estimate": estimate, "low": low, "high": high, "n_resamples": len(ratios), "n_valid": len(valid)}


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b  # x/0 → inf for x > 0, 0/0 → nan
    out[(b == 0) & (a == 0)] = np.nan
    return out


def paired_detection_test(
    truth: Sequence[BoxesLike],
    predictions_a: Sequence[BoxesLike],
    predictions_b: Sequence[BoxesLike],
    *,
    n_classes: int,
    groups: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
    hit: HitRule = "iou",
    confidence: float = 0.95,
) -> dict[str, dict[str, Any]]:
    """Two detectors on the same images: each statistic's values, difference ``A - B`` and ratio ``A / B``.

    Args:
        truth: Per-image true boxes.
        predictions_a, predictions_b: Per-image boxes of the two detectors (same images and order).
        n_classes, groups, n_resamples, seed, hit: As in :func:`resampled_detection_scores`.
        confidence: Two-sided level of the intervals.

    Returns:
        statistic (``map50``, ``map50_95``, ``froc_mean_sensitivity``) → ``{"a", "b", "difference",
        "ratio", "p_value"}``; ``difference`` and ``ratio`` are ``{estimate, low, high, n_resamples,
        n_valid}``; ``p_value`` is the two-sided paired-bootstrap p of the difference (as
        :func:`osteon.metrics.paired_bootstrap_test`).

    Example:
        >>> from osteon.data.boxes import ImageBoxes
        >>> truth = [ImageBoxes(np.array([[0.0, 0, 10, 10]]), np.array([0]))] * 4
        >>> hit = [ImageBoxes(np.array([[0.0, 0, 10, 10]]), np.array([0]), np.array([0.9]))] * 4
        >>> miss = [ImageBoxes(np.array([[50.0, 50, 60, 60]]), np.array([0]), np.array([0.9]))] * 4
        >>> paired_detection_test(truth, hit, miss, n_classes=1, n_resamples=50)["map50"]["difference"]["estimate"]
        1.0
    """
    scores = resampled_detection_scores(
        truth,
        {"a": predictions_a, "b": predictions_b},
        n_classes=n_classes,
        groups=groups,
        n_resamples=n_resamples,
        seed=seed,
        hit=hit,
    )
    result = {}
    for stat in DETECTION_STATISTICS:
        a, b = scores.point["a"][stat], scores.point["b"][stat]
        values_a, values_b = scores.resampled["a"][stat], scores.resampled["b"][stat]
        diff = a - b
        values = values_a - values_b
        interval = summarise(diff, values, confidence=confidence, name=f"{stat} difference")
        result[stat] = {
            "a": a,
            "b": b,
            "difference": interval.as_dict(),
            "ratio": ratio_interval(a, b, values_a, values_b, confidence=confidence),
            "p_value": paired_p_value(diff, values),
        }
    return result
