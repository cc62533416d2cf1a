"""Detection metrics: COCO mAP (pycocotools), FROC, image-level AUC, with bootstrap CIs by patient.

Inputs are per-image box sets, one entry per image in the same order for truth and predictions: any
objects with ``boxes`` ``(K, 4)`` float xyxy pixels, ``labels`` ``(K,)`` int class indices (0-based, no
background) and, for predictions, ``scores`` ``(K,)`` (e.g. :class:`osteon.data.boxes.ImageBoxes`).

* **mAP.** The point estimates come from pycocotools' ``COCOeval`` (bbox, area "all", 100 detections per
  image): ``map50`` = AP at IoU 0.5, ``map50_95`` = AP averaged over IoU 0.50:0.05:0.95, averaged over
  classes that have ground truth. For the bootstrap, pycocotools' per-image matching (``evalImgs``) is
  computed once and cached; each resample re-runs only COCO's accumulation step, vectorised, with every
  image weighted by how often the resample drew it. COCO's matching is per image, so this equals running
  pycocotools on the resampled image list (tests check it), at a fraction of the cost: all resamples are used.
* **FROC.** Lesion sensitivity against mean false positives per image (FP/image), read at 1/8, 1/4,
  1/2, 1, 2, 4 and 8 FP/image as lesion-detection papers do (and their mean, the CPM). A detection *hits*
  a lesion (true box) of its class when IoU ≥ 0.5 (``hit="iou"``, the default) or when its centre lies in
  the box (``hit="center"``). A lesion counts as found at a threshold when any detection hitting it scores
  at least the threshold; a detection hitting no lesion is a false positive; further hits on a lesion are
  neither (LUNA16's rule). The matching is Osteon's (boxes, IoU by ``torchvision.ops.box_iou``); the curve and
  the sensitivity at ``r`` FP/image are MONAI's ``compute_froc_curve_data`` / ``compute_froc_score``
  (CAMELYON16's code): linear interpolation between the curve's points, the curve ending at the lowest score
  kept by the detector. Scores must be ≥ 0; a detection scored 0 counts as no detection (MONAI's convention).
  The bootstrap re-weights images in a vectorised copy of MONAI's two functions; tests pin it equal to MONAI
  on the resampled images.
* **Image-level AUC.** An image is positive when it has a true box; its score is its highest box score
  (0 without boxes). Undefined (nan) when every image is positive or every image negative.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from osteon.metrics._bootstrap import resample_distribution, summarise
from osteon.metrics._common import MetricInputError, UndefinedMetricWarning, get_batched, undefined
from osteon.metrics.classification import roc_auc_score

FROC_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100
HitRule = Literal["iou", "center"]


class BoxesLike(Protocol):
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None


# -- COCO mAP through pycocotools ----------------------------------------------------------------
@dataclass
class _ClassMatches:
    """COCO's matching of one class, cached for the weighted re-accumulation (rows in score order)."""

    det_image: np.ndarray  # (D,) image index of each detection, sorted by score (mergesort, as COCO)
    det_tp: np.ndarray  # (T, D) matched and not ignored
    det_fp: np.ndarray  # (T, D) unmatched and not ignored
    gt_image: np.ndarray  # (G,) image index of each non-ignored true box


@dataclass
class CocoResult:
    """pycocotools' results plus the cached matching the bootstrap re-uses.

    Attributes:
        ap: ``(T, K)`` AP per IoU threshold and class (nan for classes without true boxes).
        matches: Per class, the cached matching.
    """

    ap: np.ndarray
    matches: list[_ClassMatches]

    @property
    def map50(self) -> float:
        return _nanmean_classes(self.ap[0])

    @property
    def map50_95(self) -> float:
        return _nanmean_classes(self.ap.mean(axis=0))


def _nanmean_classes(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def coco_evaluate(truth: Sequence[BoxesLike], predictions: Sequence[BoxesLike], *, n_classes: int) -> CocoResult:
    """Run pycocotools' COCOeval (bbox) on per-image boxes; classes are ``0..n_classes-1``.

    Raises:
        MetricInputError: different numbers of images, or labels outside ``0..n_classes-1``.
    """
    from pycocotools.cocoeval import COCOeval

    _check_inputs(truth, predictions, n_classes)
    images = [{"id": i + 1, "width": 1, "height": 1} for i in range(len(truth))]
    categories = [{"id": k + 1, "name": str(k)} for k in range(n_classes)]
    gt = _coco_object(images, categories, _annotations(truth, scored=False))
    dt = _coco_object(images, categories, _annotations(predictions, scored=True))
    evaluator = COCOeval(gt, dt, iouType="bbox")
    evaluator.params.imgIds = [im["id"] for im in images]
    evaluator.params.catIds = [c["id"] for c in categories]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (T, R, K), area "all", maxDets 100
    ap = np.where((precision > -1).all(axis=1), np.where(precision > -1, precision, 0).mean(axis=1), np.nan)
    return CocoResult(ap=ap, matches=_cache_matches(evaluator, len(images), n_classes))


def _coco_object(images: list[dict], categories: list[dict], annotations: list[dict]) -> Any:
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _annotations(per_image: Sequence[BoxesLike], *, scored: bool) -> list[dict]:
    out: list[dict] = []
    for i, item in enumerate(per_image):
        boxes = np.asarray(item.boxes, dtype=float).reshape(-1, 4)
        for k in range(len(boxes)):
            x1, y1, x2, y2 = boxes[k]
            w, h = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
            ann = {
                "id": len(out) + 1,
                "image_id": i + 1,
                "category_id": int(item.labels[k]) + 1,
                "bbox": [float(x1), float(y1), float(w), float(h)],
                "area": float(w * h),
                "iscrowd": 0,
            }
            if scored:
                ann["score"] = float(item.scores[k])  # type: ignore[index]
            out.append(ann)
    return out


def _cache_matches(evaluator: Any, n_images: int, n_classes: int) -> list[_ClassMatches]:
    """Per class: detections (top 100 per image, score order) with their match flags, and true boxes."""
    n_areas = len(evaluator.params.areaRng)
    cached = []
    for k in range(n_classes):
        entries = [evaluator.evalImgs[k * n_areas * n_images + i] for i in range(n_images)]  # area "all"
        det_image, scores, matched, ignored, gt_image = [], [], [], [], []
        for i, e in enumerate(entries):
            if e is None:
                continue
            d = len(e["dtScores"][:MAX_DETECTIONS])
            det_image.append(np.full(d, i))
            scores.append(np.asarray(e["dtScores"][:MAX_DETECTIONS], dtype=float))
            matched.append(np.asarray(e["dtMatches"][:, :MAX_DETECTIONS]) > 0)
            ignored.append(np.asarray(e["dtIgnore"][:, :MAX_DETECTIONS]).astype(bool))
            gt_image.append(np.full(int(np.sum(np.asarray(e["gtIgnore"]) == 0)), i))
        t = len(evaluator.params.iouThrs)
        if det_image:
            all_scores = np.concatenate(scores)
            order = np.argsort(-all_scores, kind="mergesort")  # as COCOeval.accumulate
            m, ig = np.concatenate(matched, axis=1)[:, order], np.concatenate(ignored, axis=1)[:, order]
            cached.append(_ClassMatches(np.concatenate(det_image)[order], m & ~ig, ~m & ~ig, np.concatenate(gt_image)))
        else:
            empty = np.zeros((t, 0), dtype=bool)
            cached.append(_ClassMatches(np.zeros(0, dtype=np.int64), empty, empty, np.zeros(0, dtype=np.int64)))
    return cached


def weighted_average_precision(result: CocoResult, weights: np.ndarray) -> np.ndarray:
    """COCO's accumulation with images weighted by ``weights`` ``(B, N)`` (bootstrap draw counts).

    Returns:
        ``(B, T, K)`` AP per resample, IoU threshold and class; nan where a class has no true box in the
        resample. With all weights 1 it equals :attr:`CocoResult.ap`.
    """
    weights = np.asarray(weights, dtype=float)
    n_b = len(weights)
    n_t = len(IOU_THRESHOLDS)
    out = np.full((n_b, n_t, len(result.matches)), np.nan)
    for k, cm in enumerate(result.matches):
        n_gt = weights[:, cm.gt_image].sum(axis=1)  # (B,)
        has_gt = n_gt > 0
        if len(cm.det_image) == 0:
            out[has_gt, :, k] = 0.0
            continue
        for start in range(0, n_b, 128):
            w = weights[start : start + 128]
            w_det = w[:, cm.det_image]  # (b, D)
            denom = np.where(has_gt[start : start + 128], n_gt[start : start + 128], np.nan)[:, None]
            for t in range(n_t):
                tp = np.cumsum(w_det * cm.det_tp[t], axis=1)
                fp = np.cumsum(w_det * cm.det_fp[t], axis=1)
                recall = tp / denom
                precision = tp / (tp + fp + np.spacing(1))
                precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # COCO's envelope
                for b in range(len(w)):
                    if not np.isfinite(denom[b, 0]):
                        continue
                    idx = np.searchsorted(recall[b], RECALL_THRESHOLDS, side="left")
                    q = np.where(idx < precision.shape[1], precision[b, np.minimum(idx, precision.shape[1] - 1)], 0.0)
                    out[start + b, t, k] = q.mean()
    return out


def coco_map_scores(
    truth: Sequence[BoxesLike], predictions: Sequence[BoxesLike], *, n_classes: int
) -> dict[str, float]:
    """``{"map50", "map50_95"}`` from pycocotools (nan when no image has a true box).

    Example:
        >>> from osteon.data.boxes import ImageBoxes
        >>> t = [ImageBoxes(np.array([[0, 0, 10, 10.0]]), np.array([0]))]
        >>> p = [ImageBoxes(np.array([[0, 0, 10, 10.0]]), np.array([0]), np.array([0.9]))]
        >>> round(coco_map_scores(t, p, n_classes=1)["map50"], 6)
        1.0
    """
    result = coco_evaluate(truth, predictions, n_classes=n_classes)
    return {"map50": result.map50, "map50_95": result.map50_95}


# -- FROC ---------------------------------------------------------------------------------------
@dataclass
class FrocData:
    """Detections reduced to what FROC needs; computed once, re-weighted per bootstrap resample.

    Attributes:
        fp_image, fp_score: image and score of each false-positive detection (score descending).
        lesion_image, lesion_score: image of each lesion and the best score of a detection hitting it
            (``-inf`` when none does), sorted by score descending.
        n_images: Number of images.
    """

    fp_image: np.ndarray
    fp_score: np.ndarray
    lesion_image: np.ndarray
    lesion_score: np.ndarray
    n_images: int


def froc_data(truth: Sequence[BoxesLike], predictions: Sequence[BoxesLike], *, hit: HitRule = "iou") -> FrocData:
    """Match detections to lesions (see the module docstring for the rule).

    Raises:
        MetricInputError: an unknown ``hit`` rule, or a score that is negative or not finite.
    """
    import torch
    from torchvision.ops import box_iou

    if hit not in ("iou", "center"):
        raise MetricInputError(f"hit must be 'iou' (IoU >= 0.5) or 'center' (centre in the box); got {hit!r}.")
    fp_image, fp_score, lesion_image, lesion_score = [], [], [], []
    for i, (t, p) in enumerate(zip(truth, predictions, strict=True)):
        tb, tl = np.asarray(t.boxes, float).reshape(-1, 4), np.asarray(t.labels)
        pb, pl = np.asarray(p.boxes, float).reshape(-1, 4), np.asarray(p.labels)
        ps = np.asarray(p.scores, float)
        if not (np.isfinite(ps) & (ps >= 0)).all():
            raise MetricInputError(
                f"predictions[{i}] has scores {ps[~(np.isfinite(ps) & (ps >= 0))][:3].tolist()}; FROC needs "
                "confidences >= 0 (pass probabilities, not logits)."
            )
        iou = np.nan_to_num(box_iou(torch.from_numpy(pb), torch.from_numpy(tb)).numpy(), nan=0.0)  # (D, G)
        if hit == "iou":
            hits = iou >= 0.5
        else:
            cx, cy = (pb[:, 0] + pb[:, 2]) / 2, (pb[:, 1] + pb[:, 3]) / 2
            hits = (
                (cx[:, None] >= tb[None, :, 0])
                & (cx[:, None] < tb[None, :, 2])
                & (cy[:, None] >= tb[None, :, 1])
                & (cy[:, None] < tb[None, :, 3])
            )
        hits &= pl[:, None] == tl[None, :]
        best = np.full(len(tb), -np.inf)
        for d in range(len(pb)):
            if hits[d].any():
                g = int(np.argmax(np.where(hits[d], iou[d], -1.0)))
                best[g] = max(best[g], ps[d])
            else:
                fp_image.append(i)
                fp_score.append(ps[d])
        lesion_image.extend([i] * len(tb))
        lesion_score.extend(best.tolist())
    fp_order = np.argsort(-np.asarray(fp_score, float), kind="mergesort")
    lesion_order = np.argsort(-np.asarray(lesion_score, float), kind="mergesort")
    return FrocData(
        np.asarray(fp_image, dtype=np.int64)[fp_order],
        np.asarray(fp_score, float)[fp_order],
        np.asarray(lesion_image, dtype=np.int64)[lesion_order],
        np.asarray(lesion_score, float)[lesion_order],
        len(truth),
    )


def monai_froc_curve(data: FrocData) -> tuple[np.ndarray, np.ndarray]:
    """MONAI's ``compute_froc_curve_data`` on the matched detections: ``(fp_per_image, sensitivity)``.

    Points run from the lowest score kept to ``(0, 0)`` (nothing kept). A missed lesion is a ``tp_prob``
    of 0 (as MONAI's ``compute_fp_tp_probs`` writes it), and a 0 is always among the scores, because MONAI
    does not use the lowest score as a threshold (with CAMELYON16's missed-lesion 0 there, it would count
    every lesion as found); so every score above 0 is a point of the curve.
    """
    from monai.metrics import compute_froc_curve_data

    tp_probs = np.where(np.isfinite(data.lesion_score), data.lesion_score, 0.0)
    fp_probs = np.append(data.fp_score, 0.0)  # the 0 that MONAI skips; never counted (thresholds are > 0)
    fps, sensitivity = compute_froc_curve_data(fp_probs, tp_probs, len(tp_probs), data.n_images)
    return np.asarray(fps, dtype=float), np.asarray(sensitivity, dtype=float)


def _monai_sensitivity(data: FrocData, rates: Sequence[float]) -> np.ndarray:
    """``(len(rates),)`` MONAI's ``compute_froc_score`` at each rate (nan without lesions)."""
    from monai.metrics import compute_froc_score

    if len(data.lesion_score) == 0:
        return np.full(len(rates), np.nan)
    fps, sensitivity = monai_froc_curve(data)
    return np.array([float(compute_froc_score(fps, sensitivity, (float(r),))) for r in rates])


def _weighted_curve(data: FrocData, weights: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(B, U)`` sensitivity and FP/image at each threshold (``thresholds`` descending)."""
    n_b = len(weights)
    fp_cum = np.concatenate([np.zeros((n_b, 1)), np.cumsum(weights[:, data.fp_image], axis=1)], axis=1)
    les_cum = np.concatenate([np.zeros((n_b, 1)), np.cumsum(weights[:, data.lesion_image], axis=1)], axis=1)
    # number of FPs / lesions with score >= threshold (scores are sorted descending)
    fp_pos = np.searchsorted(-data.fp_score, -thresholds, side="right")
    les_pos = np.searchsorted(-data.lesion_score, -thresholds, side="right")
    n_images = weights.sum(axis=1, keepdims=True)
    n_lesions = les_cum[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity = np.where(n_lesions > 0, les_cum[:, les_pos] / np.where(n_lesions > 0, n_lesions, 1), np.nan)
        fp_rate = fp_cum[:, fp_pos] / np.where(n_images > 0, n_images, 1)
    return sensitivity, fp_rate


def _froc_points(data: FrocData, max_points: int = 400) -> dict[str, list[float]]:
    """The FROC curve's points (FP/image ascending, lesion sensitivity), at most ``max_points`` of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sens, fpr = _weighted_curve(data, np.ones((1, data.n_images)), _thresholds(data))
    keep = np.unique(np.linspace(0, sens.shape[1] - 1, min(max_points, sens.shape[1])).round().astype(int))
    return {"fp_per_image": [float(v) for v in fpr[0, keep]], "sensitivity": [float(v) for v in sens[0, keep]]}


def _thresholds(data: FrocData) -> np.ndarray:
    """``inf`` (nothing kept), then every score above 0, descending: the points of MONAI's curve."""
    scores = np.concatenate([data.fp_score, data.lesion_score[np.isfinite(data.lesion_score)]])
    return np.concatenate([[np.inf], np.unique(scores[scores > 0])[::-1]])


def _sensitivity_at_rates(data: FrocData, weights: np.ndarray, rates: Sequence[float]) -> np.ndarray:
    """``(B, len(rates))`` sensitivity at each FP/image with images weighted by ``weights`` ``(B, N)``.

    MONAI's ``compute_froc_score`` (``np.interp`` over the curve's points in FP/image order), vectorised over
    resamples: scores of images a resample did not draw add points equal to a neighbour's, which leaves
    the interpolation unchanged, so row ``b`` equals MONAI on the images drawn ``weights[b]`` times.
    """
    thresholds = _thresholds(data)
    rates_arr = np.asarray(rates, dtype=float)
    out = np.full((len(weights), len(rates_arr)), np.nan)
    for start in range(0, len(weights), 256):
        sens, fpr = _weighted_curve(data, weights[start : start + 256], thresholds)
        for b in range(len(sens)):
            if np.isfinite(sens[b, 0]):  # nan: the resample drew no lesion
                out[start + b] = np.interp(rates_arr, fpr[b], sens[b])
    return out


def froc_curve(
    truth: Sequence[BoxesLike], predictions: Sequence[BoxesLike], *, hit: HitRule = "iou"
) -> dict[str, np.ndarray]:
    """The FROC curve: ``{"threshold", "sensitivity", "fp_per_image"}`` arrays, thresholds descending.

    The points equal MONAI's ``compute_froc_curve_data`` (reversed), with the score threshold of each.
    """
    data = froc_data(truth, predictions, hit=hit)
    thresholds = _thresholds(data)
    sens, fpr = _weighted_curve(data, np.ones((1, data.n_images)), thresholds)
    return {"threshold": thresholds, "sensitivity": sens[0], "fp_per_image": fpr[0]}


def froc_score(
    truth: Sequence[BoxesLike],
    predictions: Sequence[BoxesLike],
    *,
    rates: Sequence[float] = FROC_RATES,
    hit: HitRule = "iou",
) -> dict[float, float]:
    """Lesion sensitivity at each FP/image in ``rates`` (MONAI's ``compute_froc_score`` per rate).

    Undefined (nan, with a warning) when there is no lesion.

    Example:
        >>> from osteon.data.boxes import ImageBoxes
        >>> t = [ImageBoxes(np.array([[0, 0, 10, 10.0]]), np.array([0]))]
        >>> p = [ImageBoxes(np.array([[0, 0, 10, 10.0], [50, 50, 60, 60]]), np.array([0, 0]), np.array([0.4, 0.9]))]
        >>> froc_score(t, p, rates=(0.5, 1.0))
        {0.5: 0.0, 1.0: 1.0}
    """
    data = froc_data(truth, predictions, hit=hit)
    if len(data.lesion_image) == 0:
        undefined("FROC sensitivity", "there is no true box")
    values = _monai_sensitivity(data, rates)
    return {float(r): float(v) if np.isfinite(v) else float("nan") for r, v in zip(rates, values, strict=True)}


def image_scores(predictions: Sequence[BoxesLike]) -> np.ndarray:
    """``(N,)`` highest box score of each image (0 for images without a predicted box)."""
    return np.array([float(np.max(p.scores)) if len(p.boxes) else 0.0 for p in predictions])  # type: ignore[arg-type]


def choose_score_threshold(
    truth: Sequence[BoxesLike], predictions: Sequence[BoxesLike], *, fp_per_image: float = 1.0, hit: HitRule = "iou"
) -> float:
    """The lowest score threshold whose FP/image is ≤ ``fp_per_image`` (an operating point chosen on val)."""
    curve = froc_curve(truth, predictions, hit=hit)
    ok = np.flatnonzero(curve["fp_per_image"] <= fp_per_image)
    return float(curve["threshold"][ok[-1]]) if len(ok) else float("inf")


# -- the report with CIs ------------------------------------------------------------------------
def detection_report(
    truth: Sequence[BoxesLike],
    predictions: Sequence[BoxesLike],
    *,
    class_names: Sequence[str],
    groups: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
    hit: HitRule = "iou",
    score_threshold: float | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """mAP@0.5, mAP@0.5:0.95 (overall and per class), FROC and image-level AUC, each with a bootstrap CI.

    Args:
        truth, predictions: Per-image boxes (same order and length).
        class_names: Name of each class index.
        groups: ``(N,)`` patient ids: patients are resampled (all their images come along); None: images.
        n_resamples: Bootstrap resamples (all metrics use the same resamples).
        seed: Resampling seed.
        hit: FROC hit rule, ``"iou"`` (IoU ≥ 0.5) or ``"center"``.
        score_threshold: An operating point (e.g. chosen on validation); adds lesion sensitivity and
            FP/image at that score.
        confidence: Two-sided level of the intervals.

    Returns:
        A JSON-able dict; every metric is ``{"estimate", "low", "high", "n_resamples", "n_valid"}``.
    """
    n_classes = len(class_names)
    result = coco_evaluate(truth, predictions, n_classes=n_classes)
    froc = froc_data(truth, predictions, hit=hit)
    positive = np.array([len(t.boxes) > 0 for t in truth], dtype=np.int64)
    top = image_scores(predictions)
    auc_batched = get_batched(roc_auc_score)
    rates = list(FROC_RATES)
    stat_fns = {
        "ap": lambda w: weighted_average_precision(result, w),
        "froc": lambda w: _sensitivity_at_rates(froc, w, rates),
        "auc": lambda w: auc_batched(w, positive, top),  # type: ignore[misc]
    }
    if score_threshold is not None:
        stat_fns["op"] = lambda w: np.stack(_weighted_curve(froc, w, np.array([score_threshold])), axis=1)[:, :, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dist = resample_distribution(stat_fns, len(truth), groups=groups, n_resamples=n_resamples, seed=seed)
        ones = np.ones((1, len(truth)))
        point = {name: fn(ones)[0] for name, fn in stat_fns.items() if name not in ("ap", "auc", "froc")}
    point["froc"] = _monai_sensitivity(froc, rates)  # the point estimate from MONAI itself

    def ci(estimate: float, values: np.ndarray, name: str) -> dict[str, float | int]:
        return summarise(estimate, values, confidence=confidence, name=name).as_dict()

    ap_b = dist["ap"]  # (B, T, K)
    report: dict[str, Any] = {
        "map50": ci(result.map50, _class_mean(ap_b[:, 0, :]), "mAP@0.5"),
        "map50_95": ci(result.map50_95, _class_mean(ap_b.mean(axis=1)), "mAP@0.5:0.95"),
        "per_class": {
            name: {
                "ap50": ci(float(result.ap[0, k]), ap_b[:, 0, k], f"AP@0.5 {name}"),
                "ap50_95": ci(float(result.ap[:, k].mean()), ap_b[:, :, k].mean(axis=1), f"AP@0.5:0.95 {name}"),
                "n_true_boxes": int(sum(int(np.sum(np.asarray(t.labels) == k)) for t in truth)),
            }
            for k, name in enumerate(class_names)
        },
        "froc": {
            "hit_criterion": "IoU >= 0.5 with a true box of the same class" if hit == "iou" else "centre in the box",
            "sensitivity_at_fp_per_image": {
                f"{r:g}": ci(float(point["froc"][j]), dist["froc"][:, j], f"sensitivity at {r:g} FP/image")
                for j, r in enumerate(rates)
            },
            "mean_sensitivity": ci(float(np.mean(point["froc"])), dist["froc"].mean(axis=1), "FROC mean sensitivity"),
            "n_lesions": len(froc.lesion_image),
            "n_false_positives_total": len(froc.fp_image),
            "curve": _froc_points(froc),  # for the FROC figure (report/figures.py)
        },
        "image_auc": ci(_point_auc(positive, top), dist["auc"], "image-level AUC"),
        "n_true_boxes": int(sum(len(t.boxes) for t in truth)),
        "n_predicted_boxes": int(sum(len(p.boxes) for p in predictions)),
        "n_images_with_boxes": int(positive.sum()),
        "map_method": (
            "pycocotools COCOeval (bbox, area all, maxDets 100); CIs re-accumulate its cached per-image matching "
            "with bootstrap image weights (equal to re-running COCOeval on each resample)"
        ),
    }
    if score_threshold is not None:
        op = point["op"]
        report["at_operating_point"] = {
            "score_threshold": float(score_threshold),
            "lesion_sensitivity": ci(float(op[0]), dist["op"][:, 0], "lesion sensitivity at the operating point"),
            "fp_per_image": ci(float(op[1]), dist["op"][:, 1], "FP/image at the operating point"),
        }
    return report


def _class_mean(values: np.ndarray) -> np.ndarray:
    """Mean over classes (last axis) of the defined values; nan when none is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=-1)


def _point_auc(positive: np.ndarray, score: np.ndarray) -> float:
    if positive.min(initial=1) == positive.max(initial=0):
        warnings.warn(
            "image-level AUC is undefined: every image has a true box (or none has); returning nan.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return float("nan")
    return float(roc_auc_score(positive, score))


def _check_inputs(truth: Sequence[BoxesLike], predictions: Sequence[BoxesLike], n_classes: int) -> None:
    if len(truth) != len(predictions):
        raise MetricInputError(
            f"truth has {len(truth)} images but predictions {len(predictions)}; pass one entry per image, same order."
        )
    for name, items in (("truth", truth), ("predictions", predictions)):
        for i, item in enumerate(items):
            labels = np.asarray(item.labels)
            if len(labels) != len(np.asarray(item.boxes).reshape(-1, 4)):
                raise MetricInputError(f"{name}[{i}]: {len(labels)} labels for {len(item.boxes)} boxes.")
            if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
                raise MetricInputError(
                    f"{name}[{i}] has class index {int(labels.max())}, outside 0..{n_classes - 1}. "
                    "Pass n_classes = the number of class names."
                )
            if name == "predictions" and (item.scores is None or len(item.scores) != len(labels)):
                raise MetricInputError(f"predictions[{i}] needs one score per box.")
