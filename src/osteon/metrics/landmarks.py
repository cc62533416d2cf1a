"""Landmark (keypoint) metrics: radial errors, success rates within a distance, and measurement agreement.

Points are ``(N, K, 2)`` arrays of ``(x, y)`` pixels (``nan`` where a point is not annotated); spacing is
``(N, 2)`` ``(row, col)`` mm per pixel (``nan`` rows: unknown, left out of the mm metrics). Intervals come
from :func:`osteon.metrics.bootstrap_ci`, resampling patients when ``groups`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from osteon.metrics._bootstrap import bootstrap_ci
from osteon.metrics._common import MetricInputError

#: Success-detection-rate radii in mm (the cephalometric/hand-landmark literature reports 2, 2.5 and 4 mm).
SDR_RADII_MM = (2.0, 2.5, 4.0)


def _points(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 3 or array.shape[-1] != 2:
        raise MetricInputError(f"{name} must be (N, K, 2) points, got shape {array.shape}.")
    return array


def radial_errors(true_points: Any, pred_points: Any, spacing: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances between true and predicted points: ``(N, K)`` in pixels and in mm.

    ``nan`` where the true point is missing (the prediction is then not scored) or, for mm, where the spacing
    is unknown. A missing prediction of an annotated point is an infinite error (it fails every radius).
    """
    t, p = _points("true_points", true_points), _points("pred_points", pred_points)
    if t.shape != p.shape:
        raise MetricInputError(f"true_points {t.shape} and pred_points {p.shape} differ in shape.")
    present = np.isfinite(t).all(axis=-1)
    delta = p - t
    px = np.where(present, np.hypot(delta[..., 0], delta[..., 1]), np.nan)
    px = np.where(present & ~np.isfinite(p).all(axis=-1), np.inf, px)
    if spacing is None:
        return px, np.full(px.shape, np.nan)
    mm_per = np.asarray(spacing, dtype=float).reshape(len(t), 2)
    scaled = delta * mm_per[:, None, ::-1]  # (dx * col spacing, dy * row spacing)
    mm = np.where(present, np.hypot(scaled[..., 0], scaled[..., 1]), np.nan)
    mm = np.where(present & ~np.isfinite(p).all(axis=-1), np.inf, mm)
    return px, mm


def mean_radial_error(errors: Any) -> float:
    """Mean of the scored errors (``nan`` entries are unannotated points and are skipped)."""
    values = np.asarray(errors, dtype=float)
    values = values[~np.isnan(values)]
    return float(np.mean(values)) if values.size else float("nan")


def success_rate(errors: Any, radius: float) -> float:
    """Share of scored points whose error is at most ``radius`` (same unit as ``errors``)."""
    values = np.asarray(errors, dtype=float)
    values = values[~np.isnan(values)]
    return float(np.mean(values <= radius)) if values.size else float("nan")


def _ci(fn: Any, errors: np.ndarray, groups: Any, n_resamples: int, seed: int | None) -> dict[str, float | int]:
    interval = bootstrap_ci(fn, errors, groups=groups, n_resamples=n_resamples, seed=seed, vectorize=False)
    return {
        "estimate": float(interval.estimate),
        "low": float(interval.low),
        "high": float(interval.high),
        "n_valid": int(interval.n_valid),
    }


def landmark_report(
    true_points: Any,
    pred_points: Any,
    *,
    point_names: Sequence[str],
    spacing: Any = None,
    groups: Any = None,
    radii_mm: Sequence[float] = SDR_RADII_MM,
    n_resamples: int = 1000,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Mean radial error (px and mm) and success rates within ``radii_mm``, each with a bootstrap CI.

    Returns:
        ``{task, n, n_points, mre_px, mre_mm, sdr {"2mm": ci ...}, per_point {name: {n, mre_px, mre_mm}},
        bootstrap}``; mm entries are ``None`` when no image has a pixel spacing.
    """
    px, mm = radial_errors(true_points, pred_points, spacing)
    n = len(px)
    has_mm = bool(np.isfinite(mm).any() or np.isinf(mm).any())
    report: dict[str, Any] = {
        "task": "keypoints",
        "n": int(n),
        "n_points": int((~np.isnan(px)).sum()),
        "mre_px": _ci(mean_radial_error, px, groups, n_resamples, seed),
        "mre_mm": _ci(mean_radial_error, mm, groups, n_resamples, seed) if has_mm else None,
        "sdr": {},
        "per_point": {},
    }
    if has_mm:
        for r in radii_mm:
            report["sdr"][f"{r:g}mm"] = _ci(partial(success_rate, radius=r), mm, groups, n_resamples, seed)
    for k, name in enumerate(point_names):
        report["per_point"][name] = {
            "n": int((~np.isnan(px[:, k])).sum()),
            "mre_px": mean_radial_error(px[:, k]),
            "mre_mm": mean_radial_error(mm[:, k]) if has_mm else None,
        }
    n_units = n if groups is None else len(set(np.asarray(groups).tolist()))
    report["bootstrap"] = {
        "method": "percentile",
        "unit": "image" if groups is None else "patient",
        "n_units": int(n_units),
        "n_resamples": int(n_resamples),
        "confidence": 0.95,
        "seed": seed,
    }
    return report


def measurement_report(
    reference: Mapping[str, Any],
    predicted: Mapping[str, Any],
    *,
    groups: Any = None,
    n_resamples: int = 1000,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Agreement of measurements from predicted landmarks with reference measurements (Bland–Altman, MAE, r).

    Args:
        reference: ``{measurement: (N,) values}`` (e.g. the reference Cobb angles), ``nan`` where unknown.
        predicted: ``{measurement: (N,)}`` from the predicted landmarks.
        groups: ``(N,)`` patient ids for the intervals.

    Returns:
        ``{measurement: regression_report(...) on the rows where both are finite}`` (measurements with fewer
        than 3 such rows are left out).
    """
    from osteon.metrics.report import regression_report

    out: dict[str, Any] = {}
    for name, ref in reference.items():
        if name not in predicted:
            continue
        y, p = np.asarray(ref, dtype=float), np.asarray(predicted[name], dtype=float)
        keep = np.isfinite(y) & np.isfinite(p)
        if keep.sum() < 3:
            continue
        g = None if groups is None else np.asarray(groups)[keep]
        out[name] = regression_report(y[keep], p[keep], groups=g, n_resamples=n_resamples, seed=seed)
    return out
