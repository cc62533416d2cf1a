"""Binary classification metrics: AUC, ROC curve, operating point, metrics at a threshold.

Conventions: ``y_true`` holds 0/1 (or booleans), 1 = positive (e.g. fracture); ``y_score`` is any
real score where higher means "more likely positive" (a probability, a logit). A sample is called
positive when ``y_score >= threshold`` (the convention of ``sklearn.metrics.roc_curve``).

The operating point is chosen on *validation* data with :func:`choose_threshold` and applied
unchanged to test data with :func:`binary_metrics_at_threshold`.
"""

from __future__ import annotations

import warnings
from enum import StrEnum
from typing import Any

import numpy as np
from sklearn import metrics as skm

from osteon.metrics._common import (
    MetricInputError,
    as_array,
    batched,
    check_binary,
    check_finite,
    check_labels,
    check_lengths,
    safe_ratio,
    undefined,
)

__all__ = [
    "ThresholdMethod",
    "binary_metrics_at_threshold",
    "choose_threshold",
    "npv_score",
    "ppv_score",
    "roc_auc_score",
    "roc_curve",
    "sensitivity_score",
    "specificity_score",
]


class ThresholdMethod(StrEnum):
    """How :func:`choose_threshold` picks the operating point."""

    YOUDEN = "youden"
    SENSITIVITY = "sensitivity"
    SPECIFICITY = "specificity"


# --------------------------------------------------------------------------------------------- AUC
def binary_auc_batched(weights: np.ndarray, y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC for each row of frequency ``weights (B, N)``; ``nan`` where a class is absent.

    Ties count one half, so with unit weights this equals ``sklearn.metrics.roc_auc_score``.
    """
    y = np.asarray(y_true).astype(bool)
    order = np.argsort(y_score, kind="mergesort")
    s = np.asarray(y_score)[order]
    w = np.asarray(weights, dtype=float)[:, order]
    pos = y[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.zeros(0, dtype=int)
    if len(starts) == 0:
        return np.full(w.shape[0], np.nan)
    w_pos = np.add.reduceat(w * pos, starts, axis=1)  # (B, n_unique_scores)
    w_neg = np.add.reduceat(w * ~pos, starts, axis=1)
    neg_below = np.cumsum(w_neg, axis=1) - w_neg
    num = np.sum(w_pos * (neg_below + 0.5 * w_neg), axis=1)
    return safe_ratio(num, w_pos.sum(axis=1) * w_neg.sum(axis=1))


def _binary_inputs(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = check_binary("y_true", y_true)
    s = check_finite("y_score", as_array("y_score", y_score))
    check_lengths(y_true=y, y_score=s)
    return y, s


def per_class_auc_batched(weights: np.ndarray, y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """One-vs-rest AUC of each class, ``(B, C)``, for frequency ``weights (B, N)``."""
    y = np.asarray(y_true)
    return np.stack([binary_auc_batched(weights, y == c, proba[:, c]) for c in range(proba.shape[1])], axis=1)


def _roc_auc_batched(weights: np.ndarray, y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    y_score = np.asarray(y_score)
    if y_score.ndim == 1:
        return binary_auc_batched(weights, y_true, y_score)
    per_class = per_class_auc_batched(weights, y_true, y_score)
    return per_class.mean(axis=1)  # nan as soon as one class is absent from the resample


@batched(_roc_auc_batched)
def roc_auc_score(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve (binary), or macro one-vs-rest AUC (multiclass).

    Args:
        y_true: ``(N,)`` labels: 0/1 when ``y_score`` is 1-D; class indices ``0..C-1`` when
            ``y_score`` is ``(N, C)``.
        y_score: ``(N,)`` score of the positive class, or ``(N, C)`` per-class scores (rows need not
            sum to 1: each class is ranked on its own column).

    Returns:
        The AUC in [0, 1]; ``nan`` with :class:`UndefinedMetricWarning` when a class has no sample
        (binary: only one class; multiclass: any class absent from ``y_true``).

    Raises:
        MetricInputError: On mismatched lengths, labels out of range, or non-finite scores.

    Example:
        >>> roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    score = as_array("y_score", y_score, ndim=(1, 2))
    if score.ndim == 2:
        proba = check_finite("y_score", score)
        y = check_labels("y_true", y_true, proba.shape[1])
        check_lengths(y_true=y, y_score=proba)
        if proba.shape[1] < 2:
            raise MetricInputError(f"multiclass y_score needs >= 2 columns; got shape {proba.shape}.")
        absent = [c for c in range(proba.shape[1]) if not (0 < np.sum(y == c) < len(y))]
        if absent:
            return undefined("macro one-vs-rest AUC", f"classes {absent} have no sample (or all samples) in y_true")
        return float(np.mean([skm.roc_auc_score(y == c, proba[:, c]) for c in range(proba.shape[1])]))
    y, s = _binary_inputs(y_true, score)
    if len(y) == 0 or y.min() == y.max():
        return undefined("AUC", f"y_true holds only one class ({len(y)} samples, {int(y.sum())} positive)")
    return float(skm.roc_auc_score(y, s))


# ------------------------------------------------------------------------------------------ curves
def _finite_thresholds(thresholds: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """sklearn's first threshold is +inf ("nothing positive"); make it the next float above the max score."""
    out = np.asarray(thresholds, dtype=float).copy()
    if len(out) and not np.isfinite(out[0]):
        out[0] = np.nextafter(float(np.max(scores)), np.inf)
    return out


def _thin_curve(fpr: np.ndarray, tpr: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points spread evenly along the curve's length (ends kept)."""
    n = len(fpr)
    if n <= max_points:
        return np.arange(n)
    if max_points < 2:
        raise MetricInputError(f"max_points must be >= 2; got {max_points}.")
    length = np.r_[0.0, np.cumsum(np.hypot(np.diff(fpr), np.diff(tpr)))]
    targets = np.linspace(0.0, length[-1], max_points)
    idx = np.unique(np.clip(np.searchsorted(length, targets), 0, n - 1))
    return np.unique(np.r_[0, idx, n - 1])


def roc_curve(y_true: Any, y_score: Any, *, max_points: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve points (``sklearn.metrics.roc_curve`` with collinear points dropped).

    Args:
        y_true: ``(N,)`` 0/1 labels.
        y_score: ``(N,)`` scores, higher = more likely positive.
        max_points: Keep at most this many points, spread evenly along the curve (for plotting);
            the first (0, 0) and last (1, 1) points are always kept.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(K,)``, thresholds decreasing; point ``k`` calls
        ``y_score >= thresholds[k]`` positive. The first threshold is the next float above the
        highest score (sklearn uses +inf). Empty arrays, with a warning, when only one class.
    """
    y, s = _binary_inputs(y_true, y_score)
    if len(y) == 0 or y.min() == y.max():
        undefined("ROC curve", "y_true holds only one class")
        return np.zeros(0), np.zeros(0), np.zeros(0)
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=True)
    thr = _finite_thresholds(thr, s)
    if max_points is not None:
        keep = _thin_curve(fpr, tpr, max_points)
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    return fpr, tpr, thr


# ---------------------------------------------------------------------------------- operating point
def choose_threshold(
    y_true: Any, y_score: Any, *, method: ThresholdMethod | str = "youden", target: float | None = None
) -> float:
    """Choose an operating point on validation data.

    Candidate thresholds are the observed scores (plus one just above the maximum).

    Args:
        y_true: ``(N,)`` 0/1 validation labels.
        y_score: ``(N,)`` validation scores.
        method: ``"youden"`` maximises sensitivity + specificity - 1 (ties: the highest threshold);
            ``"sensitivity"`` picks the *highest* threshold whose sensitivity is ``>= target`` (the
            most specific one that reaches the target); ``"specificity"`` picks the *lowest*
            threshold whose specificity is ``>= target`` (the most sensitive one).
        target: Required for ``"sensitivity"``/``"specificity"``, in (0, 1]; must be None for youden.

    Returns:
        The threshold ``t``: a sample is positive when ``y_score >= t``.

    Raises:
        MetricInputError: Unknown method, missing/bad target, or validation data with one class
            (no operating point can be chosen without both classes).

    Example:
        >>> choose_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.8
    """
    try:
        method = ThresholdMethod(method)
    except ValueError as exc:
        allowed = [m.value for m in ThresholdMethod]
        raise MetricInputError(f"method must be one of {allowed}; got {method!r}.") from exc
    if method is ThresholdMethod.YOUDEN and target is not None:
        raise MetricInputError(f"target is only used with method='sensitivity'/'specificity'; got {target}.")
    goal = float("nan") if target is None else float(target)
    if method is not ThresholdMethod.YOUDEN and not 0.0 < goal <= 1.0:
        raise MetricInputError(f"method={method.value!r} needs target in (0, 1], e.g. target=0.9; got {target}.")
    y, s = _binary_inputs(y_true, y_score)
    if len(y) == 0 or y.min() == y.max():
        raise MetricInputError(
            f"choose_threshold needs both classes in the validation labels; got {len(y)} samples with "
            f"{int(y.sum())} positive. Use a validation split that holds positives and negatives."
        )
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    thr = _finite_thresholds(thr, s)
    eps = 1e-12
    if method is ThresholdMethod.YOUDEN:
        idx = int(np.argmax(tpr - fpr))
    elif method is ThresholdMethod.SENSITIVITY:
        idx = int(np.flatnonzero(tpr >= goal - eps)[0])
    else:
        idx = int(np.flatnonzero(1.0 - fpr >= goal - eps)[-1])
    return float(thr[idx])


# ------------------------------------------------------------------------------ metrics at a threshold
def binary_counts_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted ``tp, fp, tn, fn`` for each row of ``weights (B, N)``."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    w = np.asarray(weights, dtype=float)
    return {
        "tp": w @ (y & p).astype(float),
        "fp": w @ (~y & p).astype(float),
        "tn": w @ (~y & ~p).astype(float),
        "fn": w @ (y & ~p).astype(float),
    }


def binary_rates_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, PPV, NPV, accuracy, balanced accuracy and F1 per row of ``weights``."""
    c = binary_counts_batched(weights, y_true, y_pred)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    sens, spec = safe_ratio(tp, tp + fn), safe_ratio(tn, tn + fp)
    return {
        "sensitivity": sens,
        "specificity": spec,
        "ppv": safe_ratio(tp, tp + fp),
        "npv": safe_ratio(tn, tn + fn),
        "accuracy": safe_ratio(tp + tn, tp + tn + fp + fn),
        "balanced_accuracy": (sens + spec) / 2.0,
        "f1": safe_ratio(2 * tp, 2 * tp + fp + fn),
    }


_RATE_DEFINITIONS = {
    "sensitivity": "no positive sample (tp + fn = 0)",
    "specificity": "no negative sample (tn + fp = 0)",
    "ppv": "no sample called positive (tp + fp = 0)",
    "npv": "no sample called negative (tn + fn = 0)",
    "accuracy": "no sample",
    "balanced_accuracy": "one class has no sample",
    "f1": "no positive sample and none called positive",
}


def binary_metrics_at_threshold(y_true: Any, y_score: Any, threshold: float) -> dict[str, float | int]:
    """Confusion counts and rates at a fixed operating point (``y_score >= threshold`` is positive).

    Args:
        y_true: ``(N,)`` 0/1 labels.
        y_score: ``(N,)`` scores.
        threshold: The operating point, typically from :func:`choose_threshold` on validation data.

    Returns:
        ``{sensitivity, specificity, ppv, npv, accuracy, balanced_accuracy, f1}`` as floats (``nan``
        with one :class:`UndefinedMetricWarning` for those whose denominator is 0; balanced accuracy is
        ``(sensitivity + specificity) / 2``) and ``{tp, fp, tn, fn}`` as ints.

    Example:
        >>> m = binary_metrics_at_threshold([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], 0.5)
        >>> m["sensitivity"], m["specificity"], m["tp"], m["fp"]
        (0.5, 0.5, 1, 1)
    """
    y, s = _binary_inputs(y_true, y_score)
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise MetricInputError(f"threshold must be a finite number; got {threshold}.")
    pred = (s >= threshold).astype(np.int64)
    tn, fp, fn, tp = (int(v) for v in skm.confusion_matrix(y, pred, labels=[0, 1]).ravel())
    rates = {k: float(v[0]) for k, v in binary_rates_batched(np.ones((1, len(y))), y, pred).items()}
    missing = [k for k, v in rates.items() if np.isnan(v)]
    if missing:
        undefined(", ".join(missing), "; ".join(_RATE_DEFINITIONS[k] for k in missing))
    return {**rates, "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def _rate_score(name: str, y_true: Any, y_pred: Any) -> float:
    y = check_binary("y_true", y_true)
    p = check_binary("y_pred", y_pred)
    check_lengths(y_true=y, y_pred=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(binary_rates_batched(np.ones((1, len(y))), y, p)[name][0])
    if np.isnan(value):
        return undefined(name, _RATE_DEFINITIONS[name], stacklevel=4)
    return value


def _rate_batched(name: str):  # type: ignore[no-untyped-def]
    return lambda w, y_true, y_pred: binary_rates_batched(w, y_true, y_pred)[name]


@batched(_rate_batched("sensitivity"))
def sensitivity_score(y_true: Any, y_pred: Any) -> float:
    """Sensitivity (recall, true-positive rate) = tp / (tp + fn) of 0/1 predictions ``(N,)``.

    Example:
        >>> sensitivity_score([1, 1, 0, 0], [1, 0, 0, 1])
        0.5
    """
    return _rate_score("sensitivity", y_true, y_pred)


@batched(_rate_batched("specificity"))
def specificity_score(y_true: Any, y_pred: Any) -> float:
    """Specificity (true-negative rate) = tn / (tn + fp) of 0/1 predictions ``(N,)``.

    Example:
        >>> specificity_score([1, 1, 0, 0, 0], [1, 0, 0, 0, 1])
        0.6666666666666666
    """
    return _rate_score("specificity", y_true, y_pred)


@batched(_rate_batched("ppv"))
def ppv_score(y_true: Any, y_pred: Any) -> float:
    """Positive predictive value (precision) = tp / (tp + fp) of 0/1 predictions ``(N,)``.

    Example:
        >>> ppv_score([1, 1, 0, 0], [1, 1, 1, 0])
        0.6666666666666666
    """
    return _rate_score("ppv", y_true, y_pred)


@batched(_rate_batched("npv"))
def npv_score(y_true: Any, y_pred: Any) -> float:
    """Negative predictive value = tn / (tn + fn) of 0/1 predictions ``(N,)``.

    Example:
        >>> npv_score([1, 1, 0, 0], [1, 0, 0, 0])
        0.6666666666666666
    """
    return _rate_score("npv", y_true, y_pred)
