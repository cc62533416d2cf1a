"""Multiclass and multilabel classification metrics.

Conventions: classes are integer indices ``0..C-1`` (map class names to indices first);
``proba`` is ``(N, C)`` with one column per class; ``y_pred`` is usually ``proba.argmax(axis=1)``.
Per-class sensitivity/specificity are one-vs-rest: class ``c`` is the positive class, all others
negative. The confusion matrix has true classes in rows and predicted classes in columns.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import metrics as skm

from osteon.metrics._common import (
    MetricInputError,
    as_array,
    batched,
    check_binary,
    check_finite,
    check_labels,
    check_lengths,
    infer_n_classes,
    safe_ratio,
    undefined,
)
from osteon.metrics.classification import binary_auc_batched

__all__ = [
    "accuracy_score",
    "balanced_accuracy_score",
    "confusion_matrix",
    "per_class_metrics",
    "per_class_roc_auc_score",
    "per_label_roc_auc_score",
]


def _label_pair(y_true: Any, y_pred: Any, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    y = check_labels("y_true", y_true, n_classes)
    p = check_labels("y_pred", y_pred, n_classes)
    check_lengths(y_true=y, y_pred=p)
    return y, p, infer_n_classes(y, p, n_classes=n_classes)


def confusion_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Weighted confusion matrices ``(B, C, C)`` (rows true, columns predicted) for ``weights (B, N)``."""
    n = len(y_true)
    cell = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    onehot = sp.csr_matrix((np.ones(n), (cell, np.arange(n))), shape=(n_classes * n_classes, n))
    counts = np.asarray(onehot @ np.asarray(weights, dtype=float).T).T  # (B, C*C)
    return counts.reshape(-1, n_classes, n_classes)


def _accuracy_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return safe_ratio(w @ (np.asarray(y_true) == np.asarray(y_pred)).astype(float), w.sum(axis=1))


@batched(_accuracy_batched)
def accuracy_score(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples whose predicted class equals the true class (``sklearn.metrics.accuracy_score``).

    Args:
        y_true: ``(N,)`` true labels (any hashable labels).
        y_pred: ``(N,)`` predicted labels.

    Example:
        >>> accuracy_score([0, 1, 2, 2], [0, 2, 2, 2])
        0.75
    """
    y = as_array("y_true", y_true)
    p = as_array("y_pred", y_pred)
    check_lengths(y_true=y, y_pred=p)
    if len(y) == 0:
        return undefined("accuracy", "no sample")
    return float(skm.accuracy_score(y, p))


def _balanced_accuracy_batched(
    weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, n_classes: int | None = None
) -> np.ndarray:
    y, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    c = n_classes if n_classes is not None else int(max(y.max(initial=0), p.max(initial=0))) + 1
    cm = confusion_batched(weights, y, p, c)
    support = cm.sum(axis=2)
    recall = safe_ratio(np.diagonal(cm, axis1=1, axis2=2), support)  # (B, C), nan where no support
    if n_classes is not None:
        return recall.mean(axis=1)
    present = np.isin(np.arange(c), np.unique(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.where(present, recall, np.nan), axis=1)


@batched(_balanced_accuracy_batched)
def balanced_accuracy_score(y_true: Any, y_pred: Any, *, n_classes: int | None = None) -> float:
    """Mean per-class sensitivity (recall).

    Args:
        y_true: ``(N,)`` class indices.
        y_pred: ``(N,)`` predicted class indices.
        n_classes: When given, the mean runs over all classes ``0..n_classes-1`` and the metric is
            undefined (``nan`` + warning) if one of them has no sample in ``y_true``. When None, the
            mean runs over the classes present in ``y_true`` (``sklearn.metrics.balanced_accuracy_score``).

    Example:
        >>> balanced_accuracy_score([0, 0, 0, 1], [0, 0, 1, 1])
        0.8333333333333333
    """
    y, p, c = _label_pair(y_true, y_pred, n_classes)
    if len(y) == 0:
        return undefined("balanced accuracy", "no sample")
    if n_classes is not None:
        absent = sorted(set(range(c)) - set(np.unique(y).tolist()))
        if absent:
            return undefined("balanced accuracy", f"classes {absent} have no sample in y_true")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(skm.balanced_accuracy_score(y, p))


def confusion_matrix(y_true: Any, y_pred: Any, *, n_classes: int | None = None) -> np.ndarray:
    """Confusion matrix ``(C, C)`` int64: ``[i, j]`` = samples of true class i predicted as j.

    Args:
        y_true: ``(N,)`` class indices.
        y_pred: ``(N,)`` predicted class indices.
        n_classes: Number of classes C (default: largest index + 1).

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1], n_classes=3).tolist()
        [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    """
    y, p, c = _label_pair(y_true, y_pred, n_classes)
    if len(y) == 0:
        return np.zeros((c, c), dtype=np.int64)
    return skm.confusion_matrix(y, p, labels=np.arange(c)).astype(np.int64)


def per_class_rates_batched(
    weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
) -> dict[str, np.ndarray]:
    """One-vs-rest support, sensitivity, specificity, PPV, NPV per class, each ``(B, C)``."""
    cm = confusion_batched(weights, y_true, y_pred, n_classes)
    total = cm.sum(axis=(1, 2))[:, None]
    tp = np.diagonal(cm, axis1=1, axis2=2)
    support = cm.sum(axis=2)
    called = cm.sum(axis=1)
    fn, fp = support - tp, called - tp
    tn = total - tp - fn - fp
    return {
        "support": support,
        "sensitivity": safe_ratio(tp, tp + fn),
        "specificity": safe_ratio(tn, tn + fp),
        "ppv": safe_ratio(tp, tp + fp),
        "npv": safe_ratio(tn, tn + fn),
    }


def per_class_metrics(y_true: Any, y_pred: Any, *, n_classes: int | None = None) -> dict[str, np.ndarray]:
    """One-vs-rest sensitivity, specificity, PPV and NPV of each class.

    Args:
        y_true: ``(N,)`` class indices.
        y_pred: ``(N,)`` predicted class indices.
        n_classes: Number of classes C (default: largest index + 1).

    Returns:
        ``{support (C,) int, sensitivity (C,), specificity (C,), ppv (C,), npv (C,)}``; undefined
        entries (e.g. sensitivity of a class with no sample) are ``nan`` with one warning.

    Example:
        >>> m = per_class_metrics([0, 0, 1, 2], [0, 1, 1, 2])
        >>> m["sensitivity"].tolist(), m["specificity"].tolist()
        ([0.5, 1.0, 1.0], [1.0, 0.6666666666666666, 1.0])
    """
    y, p, c = _label_pair(y_true, y_pred, n_classes)
    rates = {k: v[0] for k, v in per_class_rates_batched(np.ones((1, len(y))), y, p, c).items()}
    rates["support"] = rates["support"].astype(np.int64)
    undefined_cells = {k: np.flatnonzero(np.isnan(v)).tolist() for k, v in rates.items() if np.isnan(v).any()}
    if undefined_cells:
        shown = "; ".join(f"{k} of classes {v}" for k, v in undefined_cells.items())
        undefined(shown, "their denominator is 0 (no sample of the class, or none predicted)")
    return rates


def per_class_roc_auc_score(y_true: Any, proba: Any) -> np.ndarray:
    """One-vs-rest AUC of each class, ``(C,)``; ``nan`` (with a warning) for a class absent from ``y_true``.

    Args:
        y_true: ``(N,)`` class indices.
        proba: ``(N, C)`` per-class scores.

    Example:
        >>> per_class_roc_auc_score([0, 1, 2, 2], [[.8, .1, .1], [.2, .7, .1], [.1, .2, .7], [.3, .3, .4]]).tolist()
        [1.0, 1.0, 1.0]
    """
    scores = check_finite("proba", as_array("proba", proba, ndim=2))
    y = check_labels("y_true", y_true, scores.shape[1])
    check_lengths(y_true=y, proba=scores)
    out = np.full(scores.shape[1], np.nan)
    for c in range(scores.shape[1]):
        positives = y == c
        if 0 < positives.sum() < len(y):
            out[c] = skm.roc_auc_score(positives, scores[:, c])
    missing = np.flatnonzero(np.isnan(out)).tolist()
    if missing:
        undefined("per-class AUC", f"classes {missing} have no sample (or all samples) in y_true")
    return out


def _per_label_auc_batched(weights: np.ndarray, y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    return np.stack([binary_auc_batched(weights, y_true[:, j], y_score[:, j]) for j in range(y_true.shape[1])], 1)


@batched(_per_label_auc_batched)
def per_label_roc_auc_score(y_true: Any, y_score: Any) -> np.ndarray:
    """Multilabel AUC: one binary AUC per label column, ``(L,)``.

    Args:
        y_true: ``(N, L)`` 0/1 indicators (several findings per image).
        y_score: ``(N, L)`` scores.

    Returns:
        ``(L,)`` AUCs; ``nan`` (one warning) for a label whose column holds one class only.

    Example:
        >>> per_label_roc_auc_score([[1, 0], [0, 1], [1, 1]], [[.9, .5], [.1, .8], [.7, .3]]).tolist()
        [1.0, 0.5]
    """
    y = as_array("y_true", y_true, ndim=2)
    s = check_finite("y_score", as_array("y_score", y_score, ndim=2))
    if y.shape != s.shape:
        raise MetricInputError(f"y_true and y_score must have the same shape (N, L); got {y.shape} and {s.shape}.")
    n_labels = int(s.shape[1])
    y = check_binary("y_true", y.ravel()).reshape(s.shape)
    out = np.full(n_labels, np.nan)
    for j in range(n_labels):
        if 0 < y[:, j].sum() < len(y):
            out[j] = skm.roc_auc_score(y[:, j], s[:, j])
    missing = np.flatnonzero(np.isnan(out)).tolist()
    if missing:
        undefined("per-label AUC", f"label columns {missing} hold only one class")
    return out
