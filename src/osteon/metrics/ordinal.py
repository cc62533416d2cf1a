"""Ordinal (graded) metrics: weighted kappa, grade error, within-one accuracy, per-grade tables.

Conventions: grades are integer indices ``0..K-1`` in clinical order (e.g. Kellgren–Lawrence 0–4).
Distances between grades are distances between indices, so pass ``n_grades`` whenever a grade
might be absent from both arrays (kappa weights depend on the full grade scale).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn import metrics as skm

from osteon.metrics._common import batched, check_labels, check_lengths, infer_n_classes, safe_ratio, undefined
from osteon.metrics.multiclass import confusion_batched, per_class_metrics

__all__ = [
    "linear_weighted_kappa_score",
    "mean_absolute_grade_error",
    "per_grade_metrics",
    "quadratic_weighted_kappa_score",
    "within_one_accuracy_score",
]

KappaWeights = Literal["linear", "quadratic"]


def _grade_pair(y_true: Any, y_pred: Any, n_grades: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    y = check_labels("y_true", y_true, n_grades)
    p = check_labels("y_pred", y_pred, n_grades)
    check_lengths(y_true=y, y_pred=p)
    return y, p, infer_n_classes(y, p, n_classes=n_grades)


def kappa_batched(
    weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, kappa_weights: KappaWeights, n_grades: int
) -> np.ndarray:
    """Weighted Cohen's kappa ``(B,)`` from weighted confusion matrices; ``nan`` where undefined."""
    cm = confusion_batched(weights, y_true, y_pred, n_grades)
    total = cm.sum(axis=(1, 2))
    expected = safe_ratio(cm.sum(axis=2)[:, :, None] * cm.sum(axis=1)[:, None, :], total[:, None, None])
    idx = np.arange(n_grades)
    dist = np.abs(idx[:, None] - idx[None, :]).astype(float)
    w = dist if kappa_weights == "linear" else dist**2
    observed = np.sum(w * cm, axis=(1, 2))
    chance = np.sum(w * expected, axis=(1, 2))
    return 1.0 - safe_ratio(observed, chance)


def _weighted_kappa(y_true: Any, y_pred: Any, kappa_weights: KappaWeights, n_grades: int | None) -> float:
    y, p, k = _grade_pair(y_true, y_pred, n_grades)
    name = f"{kappa_weights} weighted kappa"
    if len(y) == 0:
        return undefined(name, "no sample", stacklevel=4)
    if np.isnan(kappa_batched(np.ones((1, len(y))), y, p, kappa_weights=kappa_weights, n_grades=k)[0]):
        return undefined(name, "chance disagreement is 0 (both raters use a single grade)", stacklevel=4)
    return float(skm.cohen_kappa_score(y, p, weights=kappa_weights, labels=np.arange(k)))


def _qwk_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, n_grades: int | None = None):  # type: ignore[no-untyped-def]
    k = infer_n_classes(np.asarray(y_true), np.asarray(y_pred), n_classes=n_grades)
    return kappa_batched(weights, y_true, y_pred, kappa_weights="quadratic", n_grades=k)


def _lwk_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, n_grades: int | None = None):  # type: ignore[no-untyped-def]
    k = infer_n_classes(np.asarray(y_true), np.asarray(y_pred), n_classes=n_grades)
    return kappa_batched(weights, y_true, y_pred, kappa_weights="linear", n_grades=k)


@batched(_qwk_batched)
def quadratic_weighted_kappa_score(y_true: Any, y_pred: Any, *, n_grades: int | None = None) -> float:
    """Quadratic weighted Cohen's kappa (``sklearn.metrics.cohen_kappa_score(weights="quadratic")``).

    Args:
        y_true: ``(N,)`` true grades ``0..K-1``.
        y_pred: ``(N,)`` predicted grades.
        n_grades: K, the number of grades on the scale (default: largest grade + 1).

    Returns:
        Kappa in [-1, 1]; ``nan`` with :class:`UndefinedMetricWarning` when chance disagreement is 0.
        Symmetric in its two arguments.

    Example:
        >>> round(quadratic_weighted_kappa_score([0, 1, 2, 3, 4], [0, 1, 2, 4, 4]), 4)
        0.9565
    """
    return _weighted_kappa(y_true, y_pred, "quadratic", n_grades)


@batched(_lwk_batched)
def linear_weighted_kappa_score(y_true: Any, y_pred: Any, *, n_grades: int | None = None) -> float:
    """Linear weighted Cohen's kappa (``sklearn.metrics.cohen_kappa_score(weights="linear")``).

    Args:
        y_true: ``(N,)`` true grades ``0..K-1``.
        y_pred: ``(N,)`` predicted grades.
        n_grades: K, the number of grades on the scale (default: largest grade + 1).

    Example:
        >>> round(linear_weighted_kappa_score([0, 1, 2, 3, 4], [0, 1, 2, 4, 4]), 4)
        0.8837
    """
    return _weighted_kappa(y_true, y_pred, "linear", n_grades)


def _grade_error_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return safe_ratio(w @ np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float)), w.sum(axis=1))


@batched(_grade_error_batched)
def mean_absolute_grade_error(y_true: Any, y_pred: Any) -> float:
    """Mean absolute difference between true and predicted grade, in grades (lower is better).

    Example:
        >>> mean_absolute_grade_error([0, 1, 2, 3], [0, 2, 2, 1])
        0.75
    """
    y, p, _ = _grade_pair(y_true, y_pred, None)
    if len(y) == 0:
        return undefined("mean absolute grade error", "no sample")
    return float(skm.mean_absolute_error(y, p))


def _within_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, tolerance: int = 1) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    hit = (np.abs(np.asarray(y_true, np.int64) - np.asarray(y_pred, np.int64)) <= tolerance).astype(float)
    return safe_ratio(w @ hit, w.sum(axis=1))


@batched(_within_batched)
def within_one_accuracy_score(y_true: Any, y_pred: Any, *, tolerance: int = 1) -> float:
    """Fraction of samples whose predicted grade is within ``tolerance`` grades (default ±1) of the truth.

    Example:
        >>> within_one_accuracy_score([0, 1, 2, 3], [0, 2, 4, 3])
        0.75
    """
    y, p, _ = _grade_pair(y_true, y_pred, None)
    if len(y) == 0:
        return undefined("within-one accuracy", "no sample")
    return float(np.mean(np.abs(y - p) <= tolerance))


def cumulative_rates_batched(
    weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_grades: int
) -> dict[str, np.ndarray]:
    """Sensitivity/specificity of "grade >= k" for k = 1..K-1, each ``(B, K-1)``."""
    cm = confusion_batched(weights, y_true, y_pred, n_grades)
    sens, spec = [], []
    for k in range(1, n_grades):
        tp = cm[:, k:, k:].sum(axis=(1, 2))
        fn = cm[:, k:, :k].sum(axis=(1, 2))
        tn = cm[:, :k, :k].sum(axis=(1, 2))
        fp = cm[:, :k, k:].sum(axis=(1, 2))
        sens.append(safe_ratio(tp, tp + fn))
        spec.append(safe_ratio(tn, tn + fp))
    shape = (cm.shape[0], 0)
    return {
        "sensitivity": np.stack(sens, axis=1) if sens else np.zeros(shape),
        "specificity": np.stack(spec, axis=1) if spec else np.zeros(shape),
    }


def per_grade_metrics(y_true: Any, y_pred: Any, *, n_grades: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per-grade table: one-vs-rest rates per grade, and "grade >= k" dichotomies.

    Args:
        y_true: ``(N,)`` true grades ``0..K-1``.
        y_pred: ``(N,)`` predicted grades.
        n_grades: K (default: largest grade + 1).

    Returns:
        ``{"one_vs_rest": {support, sensitivity, specificity, ppv, npv} each (K,),
        "at_least": {sensitivity, specificity} each (K-1,)}`` where ``at_least[...][k-1]`` treats
        grade >= k as positive (e.g. KL >= 2 = radiographic osteoarthritis). Undefined entries are
        ``nan`` (with a warning).

    Example:
        >>> t = per_grade_metrics([0, 1, 2, 2], [0, 2, 2, 1], n_grades=3)
        >>> t["at_least"]["sensitivity"].tolist()
        [1.0, 0.5]
    """
    y, p, k = _grade_pair(y_true, y_pred, n_grades)
    ovr = per_class_metrics(y, p, n_classes=k)
    cumulative = {name: v[0] for name, v in cumulative_rates_batched(np.ones((1, len(y))), y, p, k).items()}
    if any(np.isnan(v).any() for v in cumulative.values()):
        undefined("'grade >= k' sensitivity/specificity for some k", "no sample on one side of the cut")
    return {"one_vs_rest": ovr, "at_least": cumulative}
