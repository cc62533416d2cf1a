"""Detection metrics: mAP equals pycocotools on hand-made boxes, bootstrap re-accumulation equals re-running
COCOeval on resampled images, FROC equals MONAI (point and resamples), FROC and image-level AUC by hand."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from osteon.data.boxes import ImageBoxes
from osteon.metrics import MetricInputError
from osteon.metrics.detection import (
    _sensitivity_at_rates,
    coco_evaluate,
    coco_map_scores,
    detection_report,
    froc_curve,
    froc_data,
    froc_score,
    monai_froc_curve,
    weighted_average_precision,
)


def gt(*boxes: list[float], labels: list[int] | None = None) -> ImageBoxes:
    arr = np.array(boxes, dtype=float).reshape(-1, 4)
    return ImageBoxes(arr, np.array(labels if labels is not None else [0] * len(arr), dtype=np.int64))


def pred(boxes: list[list[float]], scores: list[float], labels: list[int] | None = None) -> ImageBoxes:
    arr = np.array(boxes, dtype=float).reshape(-1, 4)
    lab = np.array(labels if labels is not None else [0] * len(arr), dtype=np.int64)
    return ImageBoxes(arr, lab, np.array(scores, dtype=float))


def pycocotools_stats(truth: list[ImageBoxes], preds: list[ImageBoxes], n_classes: int) -> tuple[float, float]:
    """mAP@0.5 and mAP@0.5:0.95 straight from pycocotools' summarize() (the reference)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def dataset(items: list[ImageBoxes], scored: bool) -> COCO:
        anns = []
        for i, item in enumerate(items):
            for k, (x1, y1, x2, y2) in enumerate(item.boxes):
                ann = {"id": len(anns) + 1, "image_id": i + 1, "category_id": int(item.labels[k]) + 1, "iscrowd": 0}
                ann.update(bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1))
                if scored:
                    ann["score"] = float(item.scores[k])
                anns.append(ann)
        coco = COCO()
        coco.dataset = {
            "images": [{"id": i + 1} for i in range(len(items))],
            "categories": [{"id": c + 1} for c in range(n_classes)],
            "annotations": anns,
        }
        coco.createIndex()
        return coco

    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(dataset(truth, False), dataset(preds, True), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[1]), float(evaluator.stats[0])


def random_case(seed: int, n_images: int = 25, n_classes: int = 2) -> tuple[list[ImageBoxes], list[ImageBoxes]]:
    rng = np.random.default_rng(seed)
    truth, preds = [], []
    for _ in range(n_images):
        g = int(rng.integers(0, 4))
        xy = rng.uniform(0, 200, (g, 2))
        t = np.concatenate([xy, xy + rng.uniform(8, 60, (g, 2))], axis=1)
        tl = rng.integers(0, n_classes, g)
        d = int(rng.integers(0, 5))
        fxy = rng.uniform(0, 200, (d, 2))
        jitter = t + rng.normal(0, 5, t.shape)
        jitter = np.concatenate([np.minimum(jitter[:, :2], jitter[:, 2:] - 1), jitter[:, 2:]], axis=1)  # valid boxes
        p = np.concatenate([jitter, np.concatenate([fxy, fxy + 20], axis=1)])
        pl = np.concatenate([tl, rng.integers(0, n_classes, d)])
        truth.append(ImageBoxes(t, tl))
        preds.append(ImageBoxes(p, pl, rng.uniform(0, 1, len(p)).round(2)))
    return truth, preds


def test_map_by_hand() -> None:
    # One true box; the best-scored detection misses it (IoU 0), the second hits it exactly.
    # Precision at the hit is 1/2, recall 1 → AP = 0.5 at every IoU threshold.
    truth = [gt([0, 0, 10, 10])]
    preds = [pred([[50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8])]
    assert coco_map_scores(truth, preds, n_classes=1) == {"map50": pytest.approx(0.5), "map50_95": pytest.approx(0.5)}
    # IoU 70/130 = 0.54 (box shifted by 3 px on a 10-px side): a hit at IoU 0.50 only → 1/10 of the thresholds.
    shifted = [pred([[3, 0, 13, 10]], [0.9])]
    result = coco_map_scores(truth, shifted, n_classes=1)
    assert result["map50"] == pytest.approx(1.0) and result["map50_95"] == pytest.approx(0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_equals_pycocotools(seed: int) -> None:
    truth, preds = random_case(seed)
    ours = coco_map_scores(truth, preds, n_classes=2)
    ref50, ref = pycocotools_stats(truth, preds, 2)
    assert ours["map50"] == pytest.approx(ref50, abs=1e-12)
    assert ours["map50_95"] == pytest.approx(ref, abs=1e-12)


def test_weighted_accumulation_equals_pycocotools_on_the_resampled_images() -> None:
    truth, preds = random_case(3)
    result = coco_evaluate(truth, preds, n_classes=2)
    np.testing.assert_allclose(weighted_average_precision(result, np.ones((1, len(truth))))[0], result.ap, atol=1e-12)
    counts = np.random.default_rng(0).multinomial(len(truth), np.ones(len(truth)) / len(truth), size=4)
    weighted = weighted_average_precision(result, counts)
    for b, row in enumerate(counts):
        drawn = np.repeat(np.arange(len(truth)), row)
        ref = coco_evaluate([truth[i] for i in drawn], [preds[i] for i in drawn], n_classes=2).ap
        np.testing.assert_allclose(weighted[b], ref, atol=1e-12)


def test_froc_by_hand() -> None:
    truth = [gt([0, 0, 10, 10], [20, 20, 30, 30]), gt()]
    preds = [
        pred([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]], [0.9, 0.8, 0.3]),  # 2nd hits lesion 1 again: ignored
        pred([[50, 50, 60, 60], [70, 70, 80, 80]], [0.7, 0.5]),  # 2 false positives in the negative image
    ]
    curve = froc_curve(truth, preds)
    # thresholds: none kept (inf), 0.9 (1 of 2 lesions), 0.7 (1 FP in 2 images), 0.5 (2 FP), 0.3 (both lesions);
    # the 0.8 box is a second hit on lesion 1: neither TP nor FP, so not a point of the curve
    assert curve["threshold"].tolist() == [np.inf, 0.9, 0.7, 0.5, 0.3]
    assert curve["sensitivity"].tolist() == [0.0, 0.5, 0.5, 0.5, 1.0]
    assert curve["fp_per_image"].tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert froc_score(truth, preds, rates=(0.25, 0.5, 1.0, 8.0)) == {0.25: 0.5, 0.5: 0.5, 1.0: 1.0, 8.0: 1.0}


def test_froc_reads_the_curve_by_interpolation_as_monai() -> None:
    """Between two points of the curve the sensitivity is interpolated (CAMELYON16/LUNA16, MONAI), not stepped."""
    truth = [gt([0, 0, 10, 10]), gt([0, 0, 10, 10])]
    preds = [pred([[0, 0, 10, 10], [50, 50, 60, 60]], [0.8, 0.6]), pred([[0, 0, 10, 10]], [0.6])]
    # points (FP/image, sensitivity): (0, 0) nothing kept, (0, 0.5) at 0.8, (0.5, 1.0) at 0.6
    assert froc_curve(truth, preds)["sensitivity"].tolist() == [0.0, 0.5, 1.0]
    assert froc_score(truth, preds, rates=(0.25, 0.5, 2.0)) == {0.25: 0.75, 0.5: 1.0, 2.0: 1.0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_froc_curve_and_scores_equal_monai(seed: int) -> None:
    from monai.metrics import compute_froc_curve_data, compute_froc_score

    truth, preds = random_case(seed, n_images=30)
    data = froc_data(truth, preds)
    # MONAI's own inputs: a missed lesion is a tp prob of 0 (compute_fp_tp_probs' convention)
    tp = np.where(np.isfinite(data.lesion_score), data.lesion_score, 0.0)
    fps, sens = compute_froc_curve_data(np.append(data.fp_score, 0.0), tp, len(tp), len(truth))
    curve = froc_curve(truth, preds)
    np.testing.assert_allclose(curve["fp_per_image"], fps[::-1], atol=1e-12)
    np.testing.assert_allclose(curve["sensitivity"], sens[::-1], atol=1e-12)
    rates = (0.125, 0.3, 0.5, 1.0, 1.7, 8.0)
    ours = froc_score(truth, preds, rates=rates)
    for r in rates:
        assert ours[r] == pytest.approx(float(compute_froc_score(fps, sens, (r,))), abs=1e-12)


def test_froc_bootstrap_equals_monai_on_the_resampled_images() -> None:
    truth, preds = random_case(5, n_images=20)
    data = froc_data(truth, preds)
    rates = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    counts = np.random.default_rng(1).multinomial(len(truth), np.ones(len(truth)) / len(truth), size=6)
    weighted = _sensitivity_at_rates(data, counts, rates)
    for b, row in enumerate(counts):
        drawn = np.repeat(np.arange(len(truth)), row)
        ref_data = froc_data([truth[i] for i in drawn], [preds[i] for i in drawn])
        fps, sens = monai_froc_curve(ref_data)
        from monai.metrics import compute_froc_score

        ref = [float(compute_froc_score(fps, sens, (r,))) for r in rates]
        np.testing.assert_allclose(weighted[b], ref, atol=1e-12)


def test_froc_refuses_negative_scores() -> None:
    with pytest.raises(MetricInputError, match="confidences >= 0"):
        froc_score([gt([0, 0, 10, 10])], [pred([[0, 0, 10, 10]], [-1.5])])


def test_froc_centre_rule_and_classes() -> None:
    truth = [gt([0, 0, 40, 40])]
    small = [pred([[15, 15, 25, 25]], [0.9])]  # IoU 0.0625, but its centre lies in the lesion
    assert froc_score(truth, small, rates=(1.0,)) == {1.0: 0.0}
    assert froc_score(truth, small, rates=(1.0,), hit="center") == {1.0: 1.0}
    wrong_class = [pred([[0, 0, 40, 40]], [0.9], labels=[1])]
    assert froc_score(truth, wrong_class, rates=(1.0,)) == {1.0: 0.0}
    with pytest.raises(MetricInputError, match="hit must be"):
        froc_score(truth, small, hit="overlap")  # type: ignore[arg-type]


def test_report_holds_every_metric_with_intervals() -> None:
    truth, preds = random_case(4, n_images=30, n_classes=1)
    truth[0], truth[1] = gt(), gt()  # two negatives so the image-level AUC is defined
    groups = np.repeat(np.arange(15), 2)
    report = detection_report(truth, preds, class_names=["fx"], groups=groups, n_resamples=200, score_threshold=0.5)
    ref50, ref = pycocotools_stats(truth, preds, 1)
    assert report["map50"]["estimate"] == pytest.approx(ref50) and report["map50_95"]["estimate"] == pytest.approx(ref)
    for block in (report["map50"], report["map50_95"], report["image_auc"], report["froc"]["mean_sensitivity"]):
        assert block["low"] <= block["estimate"] <= block["high"] and block["n_resamples"] == 200
    rates = report["froc"]["sensitivity_at_fp_per_image"]
    assert list(rates) == ["0.125", "0.25", "0.5", "1", "2", "4", "8"]
    estimates = [rates[r]["estimate"] for r in rates]
    assert estimates == sorted(estimates)  # sensitivity never falls as more false positives are allowed
    assert report["per_class"]["fx"]["ap50"]["estimate"] == pytest.approx(ref50)
    assert report["at_operating_point"]["fp_per_image"]["estimate"] >= 0


def test_undefined_and_bad_inputs() -> None:
    truth = [gt([0, 0, 10, 10])]
    preds = [pred([[0, 0, 10, 10]], [0.9])]
    with pytest.warns(UserWarning, match="image-level AUC is undefined"):
        report = detection_report(truth * 3, preds * 3, class_names=["fx"], n_resamples=20)
    assert np.isnan(report["image_auc"]["estimate"])
    with pytest.raises(MetricInputError, match="one entry per image"):
        coco_map_scores(truth, preds * 2, n_classes=1)
    with pytest.raises(MetricInputError, match="class index 1"):
        coco_map_scores([gt([0, 0, 1, 1], labels=[1])], preds, n_classes=1)
    assert np.isnan(coco_map_scores([gt()], preds, n_classes=1)["map50"])  # no true box: undefined
