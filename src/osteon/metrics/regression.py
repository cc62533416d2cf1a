"""Regression metrics (e.g. bone age in months): MAE, RMSE, R², Pearson r, Bland–Altman agreement.

Conventions: ``y_true`` is the reference, ``y_pred`` the model, both ``(N,)`` in the same unit.
Bland–Altman differences are ``y_pred - y_true`` (positive bias = the model over-estimates).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from osteon.metrics._common import as_array, batched, check_finite, check_lengths, safe_ratio, undefined

__all__ = ["bland_altman", "mean_absolute_error", "pearson_r_score", "r2_score", "root_mean_squared_error"]

LOA_Z = 1.96  # limits of agreement = bias ± 1.96 SD (Bland & Altman 1986)


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y = check_finite("y_true", as_array("y_true", y_true))
    p = check_finite("y_pred", as_array("y_pred", y_pred))
    check_lengths(y_true=y, y_pred=p)
    return y, p


def _wmean(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return safe_ratio(w @ x, w.sum(axis=1))


def _mae_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return _wmean(np.asarray(weights, float), np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float)))


def _rmse_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.sqrt(_wmean(np.asarray(weights, float), (np.asarray(y_pred, float) - np.asarray(y_true, float)) ** 2))


def _r2_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, float)
    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    mean = _wmean(w, y)[:, None]
    ss_tot = np.sum(w * (y[None, :] - mean) ** 2, axis=1)
    ss_res = w @ (y - p) ** 2
    out = 1.0 - safe_ratio(ss_res, ss_tot)
    out[ss_tot <= 1e-12 * np.maximum(1.0, np.sum(w * y[None, :] ** 2, axis=1))] = np.nan
    return out


def pearson_batched(weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlation ``(B,)`` for frequency ``weights (B, N)``; ``nan`` if a variable is constant."""
    w = np.asarray(weights, float)
    x, y = np.asarray(x, float), np.asarray(y, float)
    mx, my = _wmean(w, x)[:, None], _wmean(w, y)[:, None]
    dx, dy = x[None, :] - mx, y[None, :] - my
    sxx, syy, sxy = np.sum(w * dx * dx, 1), np.sum(w * dy * dy, 1), np.sum(w * dx * dy, 1)
    scale_x = np.sum(w * x[None, :] ** 2, 1)
    scale_y = np.sum(w * y[None, :] ** 2, 1)
    out = safe_ratio(sxy, np.sqrt(sxx * syy))
    out[(sxx <= 1e-12 * np.maximum(scale_x, 1.0)) | (syy <= 1e-12 * np.maximum(scale_y, 1.0))] = np.nan
    return np.clip(out, -1.0, 1.0)


@batched(_mae_batched)
def mean_absolute_error(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error (``sklearn.metrics.mean_absolute_error``), in the unit of the target.

    Example:
        >>> mean_absolute_error([10.0, 20.0, 30.0], [12.0, 18.0, 30.0])
        1.3333333333333333
    """
    y, p = _pair(y_true, y_pred)
    if len(y) == 0:
        return undefined("MAE", "no sample")
    return float(skm.mean_absolute_error(y, p))


@batched(_rmse_batched)
def root_mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error (``sklearn.metrics.root_mean_squared_error``).

    Example:
        >>> round(root_mean_squared_error([0.0, 0.0], [3.0, 4.0]) ** 2, 6)
        12.5
    """
    y, p = _pair(y_true, y_pred)
    if len(y) == 0:
        return undefined("RMSE", "no sample")
    return float(skm.root_mean_squared_error(y, p))


@batched(_r2_batched)
def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination R² (``sklearn.metrics.r2_score``).

    Undefined (``nan`` + warning, where sklearn would return 0 or 1) when ``y_true`` is constant.

    Example:
        >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
        0.5
    """
    y, p = _pair(y_true, y_pred)
    if len(y) < 2 or np.isnan(_r2_batched(np.ones((1, len(y))), y, p)[0]):
        return undefined("R²", "y_true is constant (or has fewer than 2 samples)")
    return float(skm.r2_score(y, p))


@batched(pearson_batched)
def pearson_r_score(y_true: Any, y_pred: Any) -> float:
    """Pearson correlation coefficient r (``scipy.stats.pearsonr``); symmetric in its arguments.

    Undefined (``nan`` + warning) when either array is constant or has fewer than 2 samples.

    Example:
        >>> round(pearson_r_score([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]), 4)
        0.9934
    """
    from scipy import stats

    y, p = _pair(y_true, y_pred)
    if len(y) < 2 or np.isnan(pearson_batched(np.ones((1, len(y))), y, p)[0]):
        return undefined("Pearson r", "an array is constant (or has fewer than 2 samples)")
    return float(stats.pearsonr(y, p).statistic)


def bland_altman_batched(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Bias, SD (ddof=1) and limits of agreement per row of frequency ``weights (B, N)``."""
    w = np.asarray(weights, float)
    d = np.asarray(y_pred, float) - np.asarray(y_true, float)
    n = w.sum(axis=1)
    bias = safe_ratio(w @ d, n)
    sd = np.sqrt(safe_ratio(np.sum(w * (d[None, :] - bias[:, None]) ** 2, axis=1), n - 1))
    sd[n < 2] = np.nan
    return {"mean_difference": bias, "sd": sd, "loa_low": bias - LOA_Z * sd, "loa_high": bias + LOA_Z * sd}


def bland_altman(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Bland–Altman agreement between the model and the reference.

    Args:
        y_true: ``(N,)`` reference values.
        y_pred: ``(N,)`` model values (same unit).

    Returns:
        ``{mean_difference, sd, loa_low, loa_high}`` with differences ``y_pred - y_true``, ``sd`` the
        sample standard deviation (ddof=1) and limits of agreement ``mean_difference ± 1.96 sd``.
        ``sd`` and the limits are ``nan`` (with a warning) for fewer than 2 samples.

    Example:
        >>> ba = bland_altman([10.0, 20.0, 30.0], [11.0, 21.0, 34.0])
        >>> ba["mean_difference"], ba["sd"]
        (2.0, 1.7320508075688772)
    """
    y, p = _pair(y_true, y_pred)
    out = {k: float(v[0]) for k, v in bland_altman_batched(np.ones((1, len(y))), y, p).items()}
    if len(y) < 2:
        undefined("Bland–Altman SD and limits of agreement", f"{len(y)} sample(s), need at least 2")
    return out
