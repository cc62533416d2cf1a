"""3D segmentation metrics in mm and mL: Dice, HD95 and average surface distance (MONAI, with voxel spacing),
structure volumes, and a report with bootstrap CIs over volumes (by patient) and volume agreement (Bland–Altman).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from osteon.metrics._bootstrap import bootstrap_ci
from osteon.metrics._common import MetricInputError


def volume_metrics(truth: Any, pred: Any, spacing: Sequence[float], *, percentile: float = 95.0) -> dict[str, float]:
    """Metrics of one binary 3D mask pair ``(D, H, W)`` with ``spacing`` ``(d, h, w)`` mm.

    Returns:
        ``dice``, ``hd95_mm``, ``asd_mm`` (``nan`` when either mask is empty; Dice is 1 when both are),
        ``truth_ml``, ``pred_ml`` and ``volume_error_ml`` (pred − truth).
    """
    import torch
    from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance

    t, p = np.asarray(truth).astype(bool), np.asarray(pred).astype(bool)
    if t.shape != p.shape or t.ndim != 3:
        raise MetricInputError(f"truth {t.shape} and pred {p.shape} must be two (D, H, W) masks of one shape.")
    spacing = [float(s) for s in spacing]
    if len(spacing) != 3 or not all(s > 0 for s in spacing):
        raise MetricInputError(f"spacing must be (d, h, w) mm > 0; got {spacing}.")
    voxel_ml = float(np.prod(spacing)) / 1000.0
    out = {
        "truth_ml": float(t.sum()) * voxel_ml,
        "pred_ml": float(p.sum()) * voxel_ml,
    }
    out["volume_error_ml"] = out["pred_ml"] - out["truth_ml"]
    if not t.any() and not p.any():
        return {**out, "dice": 1.0, "hd95_mm": float("nan"), "asd_mm": float("nan")}
    tt = torch.from_numpy(t)[None, None].float()
    pp = torch.from_numpy(p)[None, None].float()
    out["dice"] = float(compute_dice(pp, tt, include_background=True, ignore_empty=False)[0, 0])
    if t.any() and p.any():
        out["hd95_mm"] = float(
            compute_hausdorff_distance(pp, tt, include_background=True, percentile=percentile, spacing=spacing)[0, 0]
        )
        out["asd_mm"] = float(
            compute_average_surface_distance(pp, tt, include_background=True, symmetric=True, spacing=spacing)[0, 0]
        )
    else:
        out["hd95_mm"] = out["asd_mm"] = float("nan")
    return out


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def volume_segmentation_report(
    rows: Sequence[dict[str, float]], *, groups: Any = None, n_resamples: int = 1000, seed: int | None = 0
) -> dict[str, Any]:
    """Mean Dice / HD95 / ASD over volumes with bootstrap CIs, and Bland–Altman of the volumes in mL.

    Args:
        rows: One :func:`volume_metrics` dict per volume (one structure).
        groups: ``(N,)`` patient ids (several volumes of one patient are resampled together).
    """
    from osteon.metrics.report import regression_report

    def ci(values: np.ndarray) -> dict[str, float | int]:
        interval = bootstrap_ci(_nanmean, values, groups=groups, n_resamples=n_resamples, seed=seed, vectorize=False)
        return {"estimate": interval.estimate, "low": interval.low, "high": interval.high, "n_valid": interval.n_valid}

    column = {k: np.array([r[k] for r in rows], dtype=float) for k in ("dice", "hd95_mm", "asd_mm")}
    report: dict[str, Any] = {"task": "segment3d", "n": len(rows), **{k: ci(v) for k, v in column.items()}}
    truth = np.array([r["truth_ml"] for r in rows], dtype=float)
    pred = np.array([r["pred_ml"] for r in rows], dtype=float)
    if len(rows) >= 3:
        report["volume_ml"] = regression_report(truth, pred, groups=groups, n_resamples=n_resamples, seed=seed)
    return report
