"""Segmentation metrics: Dice, Jaccard (IoU), HD95 and average surface distance per image, and their report.

Per-image values come from MONAI (``compute_dice``, ``compute_iou``, ``compute_hausdorff_distance`` with
``percentile=95``, ``compute_average_surface_distance`` with ``symmetric=True``), with distances in mm when a
pixel ``spacing`` is given and in pixels otherwise. Masks are boolean ``(K, H, W)`` arrays, one channel per
foreground class (a label map is turned into channels first; background is never scored).

Empty-mask policy (per image and class; MONAI's own defaults differ, so it is applied here explicitly):

============================  ======  ======  =====  ========================================
truth / prediction            Dice    IoU     HD95   counted as
============================  ======  ======  =====  ========================================
both empty                    1       1       0      a true negative image
truth empty, prediction not   0       0       nan    a false-positive image
truth present, prediction     0       0       nan    a missed image
empty
both present                  MONAI   MONAI   MONAI
============================  ======  ======  =====  ========================================

``nan`` distances are left out of the HD95/ASD means and counted separately (``n_distance_undefined``),
so a model that misses lesions is not rewarded with a small mean distance: read HD95 together with the
detection rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from osteon.metrics._bootstrap import bootstrap_ci
from osteon.metrics._common import MetricInputError, batched

__all__ = [
    "EMPTY_MASK_POLICY",
    "average_surface_distance",
    "dice_score",
    "hausdorff_distance_95",
    "jaccard_score",
    "mask_metrics",
    "nanmean_score",
    "segmentation_report",
]

EMPTY_MASK_POLICY = (
    "per image and class: both masks empty → Dice 1, IoU 1, HD95/ASD 0; exactly one empty → Dice 0, IoU 0, "
    "HD95/ASD undefined (nan: left out of the distance means and counted in n_distance_undefined)"
)


def _channels(name: str, mask: Any) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise MetricInputError(f"{name} must be a (H, W) or (K, H, W) mask; got shape {arr.shape}.")
    if arr.dtype != bool:
        values = np.unique(arr)
        if not np.isin(values, [0, 1]).all():
            raise MetricInputError(
                f"{name} must be binary (0/1 or bool) per channel; got values {values[:10].tolist()}. "
                "Turn a label map into one channel per class first (labels == k)."
            )
        arr = arr.astype(bool)
    return arr


def mask_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    spacing: Sequence[float] | None = None,
    percentile: float = 95.0,
    distances: bool = True,
) -> dict[str, np.ndarray]:
    """Per-class metrics of one image, with the module's empty-mask policy.

    Args:
        y_true: ``(K, H, W)`` or ``(H, W)`` boolean truth, one channel per foreground class.
        y_pred: Same shape, the prediction.
        spacing: ``(row, col)`` pixel size in mm; distances are in pixels when ``None``.
        percentile: Percentile of the Hausdorff distance (95 → HD95).
        distances: ``False`` skips HD95/ASD (returned as nan): overlap metrics only, much faster.

    Returns:
        ``{"dice", "iou", "hd95", "asd"}`` float arrays ``(K,)`` and ``{"truth_pixels", "pred_pixels",
        "overlap_pixels"}`` int arrays ``(K,)``.

    Raises:
        MetricInputError: shapes differ, masks are not binary, or ``spacing`` is not two positive numbers.

    Example:
        >>> t = np.zeros((4, 4), bool); t[:2, :2] = True
        >>> p = np.zeros((4, 4), bool); p[:2, :1] = True
        >>> round(float(mask_metrics(t, p)["dice"][0]), 4)  # 2·2 / (4 + 2)
        0.6667
    """
    import torch
    from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance, compute_iou

    truth, pred = _channels("y_true", y_true), _channels("y_pred", y_pred)
    if truth.shape != pred.shape:
        raise MetricInputError(
            f"y_true {truth.shape} and y_pred {pred.shape} must have the same shape (K, H, W). "
            "Map the prediction to the truth's pixel grid first."
        )
    if spacing is not None:
        spacing = [float(s) for s in spacing]
        if len(spacing) != 2 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise MetricInputError(f"spacing must be (row_mm, col_mm) > 0; got {spacing}.")
    k = truth.shape[0]
    truth_px = truth.reshape(k, -1).sum(axis=1)
    pred_px = pred.reshape(k, -1).sum(axis=1)
    overlap_px = (truth & pred).reshape(k, -1).sum(axis=1)
    t = torch.from_numpy(truth)[None]
    p = torch.from_numpy(pred)[None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns on empty masks and deprecations; the policy handles them
        dice = compute_dice(p.float(), t.float(), include_background=True, ignore_empty=False)[0].numpy()
        iou = compute_iou(p.float(), t.float(), include_background=True, ignore_empty=False)[0].numpy()
        hd = np.zeros(k)
        asd = np.zeros(k)
        both = (truth_px > 0) & (pred_px > 0)
        one = (truth_px > 0) ^ (pred_px > 0)
        hd[one] = np.nan
        asd[one] = np.nan
        if not distances:
            both = np.zeros_like(both)
            hd[:], asd[:] = np.nan, np.nan
        for c in np.flatnonzero(both):
            hd[c] = float(
                compute_hausdorff_distance(
                    p[:, c : c + 1], t[:, c : c + 1], include_background=True, percentile=percentile, spacing=spacing
                )[0, 0]
            )
            asd[c] = float(
                compute_average_surface_distance(
                    p[:, c : c + 1], t[:, c : c + 1], include_background=True, symmetric=True, spacing=spacing
                )[0, 0]
            )
    dice = dice.astype(np.float64)
    iou = iou.astype(np.float64)
    empty = (truth_px == 0) & (pred_px == 0)
    dice[empty], iou[empty] = 1.0, 1.0
    dice[one], iou[one] = 0.0, 0.0
    return {
        "dice": dice,
        "iou": iou,
        "hd95": hd,
        "asd": asd,
        "truth_pixels": truth_px.astype(np.int64),
        "pred_pixels": pred_px.astype(np.int64),
        "overlap_pixels": overlap_px.astype(np.int64),
    }


def dice_score(y_true: Any, y_pred: Any) -> float:
    """Dice coefficient ``2|T∩P| / (|T| + |P|)`` of two binary ``(H, W)`` masks (1 when both are empty).

    Example:
        >>> dice_score(np.eye(3, dtype=bool), np.eye(3, dtype=bool))
        1.0
    """
    return float(mask_metrics(y_true, y_pred)["dice"][0])


def jaccard_score(y_true: Any, y_pred: Any) -> float:
    """Jaccard index (IoU) ``|T∩P| / |T∪P|`` of two binary ``(H, W)`` masks (1 when both are empty)."""
    return float(mask_metrics(y_true, y_pred)["iou"][0])


def hausdorff_distance_95(y_true: Any, y_pred: Any, *, spacing: Sequence[float] | None = None) -> float:
    """Symmetric 95th-percentile Hausdorff distance between the masks' surfaces (MONAI), mm or pixels.

    0 when both masks are empty, ``nan`` when exactly one is.
    """
    return float(mask_metrics(y_true, y_pred, spacing=spacing)["hd95"][0])


def average_surface_distance(y_true: Any, y_pred: Any, *, spacing: Sequence[float] | None = None) -> float:
    """Symmetric average surface distance (MONAI ``symmetric=True``), mm or pixels; policy as HD95."""
    return float(mask_metrics(y_true, y_pred, spacing=spacing)["asd"][0])


# -- aggregation -----------------------------------------------------------------------------------------------
def _nanmean_batched(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    num = w @ np.where(finite, v, 0.0)
    den = w @ finite.astype(float)
    out = np.full(len(w), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


@batched(_nanmean_batched)
def nanmean_score(values: Any) -> float:
    """Mean of the finite values (``nan`` when there is none): the aggregate of per-image metrics.

    Example:
        >>> nanmean_score([1.0, float("nan"), 0.5])
        0.75
    """
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    return float(finite.mean()) if len(finite) else float("nan")


def _ci(values: np.ndarray, groups: Any, n_resamples: int, seed: int) -> dict[str, float | int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bootstrap_ci(nanmean_score, values, groups=groups, n_resamples=n_resamples, seed=seed).as_dict()


def segmentation_report(
    per_image: dict[str, np.ndarray],
    *,
    class_names: Sequence[str],
    groups: Any = None,
    distance_unit: str = "px",
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Aggregate per-image metrics into means with bootstrap CIs (by patient when ``groups`` is given).

    Args:
        per_image: ``(N, K)`` arrays ``dice``, ``iou``, ``hd95``, ``asd`` (float, nan = undefined) and
            ``truth_pixels``, ``pred_pixels``, ``overlap_pixels`` (counts), for N images and K foreground classes.
        class_names: The K foreground class names.
        groups: ``(N,)`` patient ids, or ``None`` to resample images.
        distance_unit: ``"mm"`` or ``"px"``: the unit of ``hd95``/``asd``.
        n_resamples, seed: Bootstrap settings.

    Returns:
        A JSON-able dict. Headline keys (means over images of the per-image class mean, each
        ``{estimate, low, high, n_resamples, n_valid}``): ``dice``, ``iou`` (all images, empty-mask policy),
        ``dice_positive``/``iou_positive`` (images whose truth has foreground), ``hd95``, ``asd`` (images where
        both masks have foreground), ``detection_rate`` (truth-positive images where the prediction overlaps
        the truth), ``image_sensitivity`` (truth-positive images with any predicted pixel),
        ``false_positive_rate`` (truth-empty images with any predicted pixel). Counts, the policy text, and
        ``per_class`` with the same keys for each class.
    """
    names = list(class_names)
    arrays = {k: np.asarray(v, dtype=float) for k, v in per_image.items()}
    for key in ("dice", "iou", "hd95", "asd", "truth_pixels", "pred_pixels", "overlap_pixels"):
        if key not in arrays:
            raise MetricInputError(f"per_image needs {key!r} (N, K); got keys {sorted(arrays)}.")
        if arrays[key].ndim == 1:
            arrays[key] = arrays[key][:, None]
        if arrays[key].shape[1] != len(names):
            raise MetricInputError(f"per_image[{key!r}] has {arrays[key].shape[1]} classes; expected {len(names)}.")
    per_class = {
        name: _class_report({k: v[:, c] for k, v in arrays.items()}, groups, n_resamples, seed)
        for c, name in enumerate(names)
    }
    if len(names) == 1:
        headline = dict(per_class[names[0]])
    else:  # per image: mean over the classes, then the mean over images
        truth_any: np.ndarray = np.asarray(arrays["truth_pixels"] > 0)
        pred_any: np.ndarray = np.asarray(arrays["pred_pixels"] > 0)
        summary = {
            "dice": _rowmean(arrays["dice"]),
            "iou": _rowmean(arrays["iou"]),
            "dice_positive": _rowmean(np.where(truth_any, arrays["dice"], np.nan)),
            "iou_positive": _rowmean(np.where(truth_any, arrays["iou"], np.nan)),
            "hd95": _rowmean(arrays["hd95"]),
            "asd": _rowmean(arrays["asd"]),
        }
        headline = {k: _ci(v, groups, n_resamples, seed) for k, v in summary.items()}
        headline.update(
            _rates(
                np.asarray(truth_any.any(axis=1)),
                np.asarray(pred_any.any(axis=1)),
                np.asarray((arrays["overlap_pixels"] > 0).any(axis=1)),
                groups,
                n_resamples,
                seed,
            )
        )
        headline["n_distance_undefined"] = int(np.isnan(arrays["hd95"]).sum())
        headline["n_truth_positive"] = int(truth_any.any(axis=1).sum())
        headline["n_truth_empty"] = int((~truth_any.any(axis=1)).sum())
    return {
        **headline,
        "classes": names,
        "distance_unit": distance_unit,
        "hd_percentile": 95,
        "empty_mask_policy": EMPTY_MASK_POLICY,
        "per_class": per_class,
    }


def _rowmean(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1)


def _class_report(column: dict[str, np.ndarray], groups: Any, n_resamples: int, seed: int) -> dict[str, Any]:
    truth = column["truth_pixels"] > 0
    pred = column["pred_pixels"] > 0
    out: dict[str, Any] = {
        "dice": _ci(column["dice"], groups, n_resamples, seed),
        "iou": _ci(column["iou"], groups, n_resamples, seed),
        "dice_positive": _ci(np.where(truth, column["dice"], np.nan), groups, n_resamples, seed),
        "iou_positive": _ci(np.where(truth, column["iou"], np.nan), groups, n_resamples, seed),
        "hd95": _ci(column["hd95"], groups, n_resamples, seed),
        "asd": _ci(column["asd"], groups, n_resamples, seed),
    }
    out.update(_rates(truth, pred, column["overlap_pixels"] > 0, groups, n_resamples, seed))
    out["n_distance_undefined"] = int(np.isnan(column["hd95"]).sum())
    out["n_truth_positive"] = int(truth.sum())
    out["n_truth_empty"] = int((~truth).sum())
    return out


def _rates(
    truth: np.ndarray, pred: np.ndarray, overlap: np.ndarray, groups: Any, n_resamples: int, seed: int
) -> dict[str, Any]:
    """Image-level rates from masks; each is a mean of 0/1 over the images it applies to (nan elsewhere)."""
    hit = np.where(truth, overlap.astype(float), np.nan)
    found = np.where(truth, pred.astype(float), np.nan)
    false_alarm = np.where(~truth, pred.astype(float), np.nan)
    return {
        "detection_rate": _ci(hit, groups, n_resamples, seed),
        "image_sensitivity": _ci(found, groups, n_resamples, seed),
        "false_positive_rate": _ci(false_alarm, groups, n_resamples, seed),
    }
