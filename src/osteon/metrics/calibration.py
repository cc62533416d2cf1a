"""Calibration: reliability curve, Brier score, expected calibration error (ECE).

Conventions: binary ``y_true`` 0/1 with ``y_prob (N,)`` the predicted probability of class 1 in
[0, 1]; for multiclass ECE, ``y_true`` class indices with ``y_prob (N, C)`` (top-label ECE).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn import calibration as skc
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

__all__ = ["brier_score_loss", "calibration_curve", "expected_calibration_error"]

BinStrategy = Literal["uniform", "quantile"]


def _probabilities(name: str, values: Any, *, ndim: int | tuple[int, ...] = 1) -> np.ndarray:
    prob = check_finite(name, as_array(name, values, ndim=ndim))
    if prob.size and (prob.min() < 0.0 or prob.max() > 1.0):
        raise MetricInputError(
            f"{name} must be probabilities in [0, 1]; got values in [{prob.min():.4g}, {prob.max():.4g}]. "
            "Apply a sigmoid/softmax to logits first."
        )
    return prob


def calibration_curve(
    y_true: Any, y_prob: Any, *, n_bins: int = 10, strategy: BinStrategy = "uniform"
) -> tuple[np.ndarray, np.ndarray]:
    """Reliability curve (``sklearn.calibration.calibration_curve``); empty bins are left out.

    Args:
        y_true: ``(N,)`` 0/1 labels.
        y_prob: ``(N,)`` predicted probabilities of class 1.
        n_bins: Number of bins.
        strategy: ``"uniform"`` (equal-width bins on [0, 1]) or ``"quantile"`` (equal-count bins).

    Returns:
        ``(prob_true, prob_pred)``, each ``(n_nonempty_bins,)``: observed fraction of positives and
        mean predicted probability per bin.

    Example:
        >>> calibration_curve([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], n_bins=2)[0].tolist()
        [0.0, 1.0]
    """
    y = check_binary("y_true", y_true)
    p = _probabilities("y_prob", y_prob)
    check_lengths(y_true=y, y_prob=p)
    if len(y) == 0:
        undefined("calibration curve", "no sample")
        return np.zeros(0), np.zeros(0)
    prob_true, prob_pred = skc.calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    return np.asarray(prob_true, float), np.asarray(prob_pred, float)


def _brier_batched(weights: np.ndarray, y_true: np.ndarray, y_prob: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, float)
    return safe_ratio(w @ (np.asarray(y_prob, float) - np.asarray(y_true, float)) ** 2, w.sum(axis=1))


@batched(_brier_batched)
def brier_score_loss(y_true: Any, y_prob: Any) -> float:
    """Brier score, the mean squared error of probabilities (``sklearn.metrics.brier_score_loss``); lower is better.

    Example:
        >>> brier_score_loss([0, 1], [0.2, 0.6])
        0.1
    """
    y = check_binary("y_true", y_true)
    p = _probabilities("y_prob", y_prob)
    check_lengths(y_true=y, y_prob=p)
    if len(y) == 0:
        return undefined("Brier score", "no sample")
    return float(skm.brier_score_loss(y, p, pos_label=1))


def expected_calibration_error(
    y_true: Any, y_prob: Any, *, n_bins: int = 10, strategy: BinStrategy = "uniform"
) -> float:
    """Expected calibration error: ``sum_b (n_b / N) |observed_b - predicted_b|`` (lower is better).

    Args:
        y_true: ``(N,)`` 0/1 labels (with ``y_prob (N,)``) or class indices (with ``y_prob (N, C)``).
        y_prob: ``(N,)`` probability of class 1, or ``(N, C)`` class probabilities; in the
            multiclass case the top-label ECE is computed (confidence = max probability, observed =
            whether the top class is right).
        n_bins: Number of bins over [0, 1].
        strategy: ``"uniform"`` (equal-width bins, the usual ECE) or ``"quantile"`` (equal-count).

    Example:
        >>> round(expected_calibration_error([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9], n_bins=2), 4)
        0.225
    """
    if n_bins < 1:
        raise MetricInputError(f"n_bins must be >= 1; got {n_bins}.")
    if strategy not in ("uniform", "quantile"):
        raise MetricInputError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}.")
    prob = _probabilities("y_prob", y_prob, ndim=(1, 2))
    if prob.ndim == 2:
        y = check_labels("y_true", y_true, prob.shape[1])
        check_lengths(y_true=y, y_prob=prob)
        confidence = prob.max(axis=1)
        observed = (prob.argmax(axis=1) == y).astype(float)
    else:
        y = check_binary("y_true", y_true)
        check_lengths(y_true=y, y_prob=prob)
        confidence, observed = prob, y.astype(float)
    if len(y) == 0:
        return undefined("ECE", "no sample")
    if strategy == "quantile":
        edges = np.unique(np.quantile(confidence, np.linspace(0.0, 1.0, n_bins + 1)))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    # same binning rule as sklearn.calibration.calibration_curve: inner edges, right-closed search
    bins = np.searchsorted(edges[1:-1], confidence, side="right")
    n_per_bin = np.bincount(bins, minlength=len(edges) - 1)
    gap = np.abs(
        np.bincount(bins, weights=observed, minlength=len(edges) - 1)
        - np.bincount(bins, weights=confidence, minlength=len(edges) - 1)
    )
    return float(gap.sum() / n_per_bin.sum())
