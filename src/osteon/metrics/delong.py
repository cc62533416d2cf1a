"""DeLong's test for two correlated AUCs, and DeLong's confidence interval of one AUC.

DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more correlated receiver
operating characteristic curves: a nonparametric approach", Biometrics 44:837-845, computed with the
fast midrank algorithm of Sun & Xu (2014), "Fast implementation of DeLong's algorithm for comparing
the areas under correlated receiver operating characteristic curves", IEEE Signal Processing Letters
21(11):1389-1393 — O(N log N) per score instead of O(m n).

The variance treats samples as independent. When patients contribute several images, prefer the
patient-level bootstrap (:func:`osteon.metrics.bootstrap_ci` / :func:`paired_bootstrap_test` with
``groups``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from osteon.metrics._bootstrap import ConfidenceInterval
from osteon.metrics._common import MetricInputError, as_array, check_binary, check_finite, check_lengths, undefined

__all__ = ["delong_ci", "delong_covariance", "delong_test"]


def _midranks(x: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties get the mean of their ranks) of each row of ``x (K, n)``."""
    return np.vstack([stats.rankdata(row, method="average") for row in x]) if x.shape[1] else np.zeros_like(x)


def delong_covariance(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of K scores and their DeLong covariance matrix (Sun & Xu 2014, Algorithm 1).

    Args:
        y_true: ``(N,)`` 0/1 labels, at least 2 positives and 2 negatives.
        scores: ``(K, N)`` scores of K models (or ``(N,)`` for one).

    Returns:
        ``(aucs (K,), covariance (K, K))``.

    Raises:
        MetricInputError: Malformed input or fewer than 2 samples of a class (the variance needs 2).
    """
    y = check_binary("y_true", y_true).astype(bool)
    s = check_finite("scores", as_array("scores", scores, ndim=(1, 2)))
    s = s[None, :] if s.ndim == 1 else s
    check_lengths(y_true=y, scores=s.T)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        raise MetricInputError(
            f"DeLong's variance needs at least 2 positive and 2 negative samples; got {m} positive, {n} negative."
        )
    pos, neg = s[:, y], s[:, ~y]
    tx, ty, tz = _midranks(pos), _midranks(neg), _midranks(np.hstack([pos, neg]))
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v01 = (tz[:, :m] - tx) / n  # structural components of the positives, (K, m)
    v10 = 1.0 - (tz[:, m:] - ty) / m  # structural components of the negatives, (K, n)
    sx = np.atleast_2d(np.cov(v01))
    sy = np.atleast_2d(np.cov(v10))
    return aucs, sx / m + sy / n


def delong_test(y_true: Any, score_a: Any, score_b: Any) -> tuple[float, float, float, float]:
    """DeLong's two-sided test of equal AUCs for two models scored on the same samples.

    Args:
        y_true: ``(N,)`` 0/1 labels.
        score_a: ``(N,)`` scores of model A.
        score_b: ``(N,)`` scores of model B.

    Returns:
        ``(auc_a, auc_b, z, p_value)`` with ``z = (auc_a - auc_b) / sd(auc_a - auc_b)``. When the
        variance of the difference is 0 and the AUCs are equal (e.g. identical scores) ``z = 0`` and
        ``p = 1``; with 0 variance and different AUCs, or fewer than 2 samples of a class, z and p
        are ``nan`` with :class:`UndefinedMetricWarning`.

    Example:
        >>> y = [0, 0, 0, 1, 1, 1]
        >>> a, b, z, p = delong_test(y, [0.1, 0.2, 0.6, 0.5, 0.8, 0.9], [0.1, 0.2, 0.6, 0.5, 0.8, 0.9])
        >>> round(a, 4), p
        (0.8889, 1.0)
    """
    y = check_binary("y_true", y_true)
    a = check_finite("score_a", as_array("score_a", score_a))
    b = check_finite("score_b", as_array("score_b", score_b))
    check_lengths(y_true=y, score_a=a, score_b=b)
    m, n = int(y.sum()), int(len(y) - y.sum())
    if m < 2 or n < 2:
        undefined("DeLong test", f"needs at least 2 positive and 2 negative samples; got {m} and {n}")
        return float("nan"), float("nan"), float("nan"), float("nan")
    aucs, cov = delong_covariance(y, np.vstack([a, b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    scale = max(float(cov[0, 0] + cov[1, 1]), 1e-300)
    if var <= 1e-12 * scale or var <= 0.0:
        if abs(diff) <= 1e-12:
            return float(aucs[0]), float(aucs[1]), 0.0, 1.0
        undefined("DeLong z", "the variance of the AUC difference is 0 while the AUCs differ")
        return float(aucs[0]), float(aucs[1]), float("nan"), float("nan")
    z = diff / np.sqrt(var)
    p = float(2.0 * stats.norm.sf(abs(z)))
    return float(aucs[0]), float(aucs[1]), float(z), p


def delong_ci(y_true: Any, score: Any, confidence: float = 0.95) -> ConfidenceInterval:
    """DeLong (asymptotic normal) confidence interval of one AUC, clipped to [0, 1].

    Args:
        y_true: ``(N,)`` 0/1 labels.
        score: ``(N,)`` scores.
        confidence: Two-sided level in (0, 1).

    Returns:
        ConfidenceInterval(estimate=AUC, low, high, n_resamples=0, n_valid=0) (analytic: no
        resamples); bounds ``nan`` with a warning for fewer than 2 samples of a class.

    Example:
        >>> ci = delong_ci([0, 0, 1, 1], [0.8, 0.2, 0.4, 0.6])
        >>> ci.estimate, ci.low, ci.high
        (0.5, 0.0, 1.0)
    """
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}.")
    y = check_binary("y_true", y_true)
    s = check_finite("score", as_array("score", score))
    check_lengths(y_true=y, score=s)
    m, n = int(y.sum()), int(len(y) - y.sum())
    if m < 2 or n < 2:
        undefined("DeLong CI", f"needs at least 2 positive and 2 negative samples; got {m} and {n}")
        est = float("nan") if m == 0 or n == 0 else float(_midrank_auc(y, s))
        return ConfidenceInterval(est, float("nan"), float("nan"))
    aucs, cov = delong_covariance(y, s)
    half = stats.norm.ppf(0.5 + confidence / 2.0) * np.sqrt(max(float(cov[0, 0]), 0.0))
    auc = float(aucs[0])
    return ConfidenceInterval(auc, max(0.0, auc - half), min(1.0, auc + half))


def _midrank_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Midrank (Mann–Whitney) AUC of one score; needs at least one sample of each class."""
    y = np.asarray(y_true).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    ranks = stats.rankdata(np.r_[score[y], score[~y]])
    return float((ranks[:m].sum() - m * (m + 1) / 2.0) / (m * n))
