"""Detectors compared on the same bootstrap resamples: differences, ratios and their intervals."""

from __future__ import annotations

import numpy as np
import pytest

from osteon.data.boxes import ImageBoxes
from osteon.metrics import MetricInputError, detection_report, paired_detection_test, resampled_detection_scores
from osteon.metrics.detection_compare import ratio_interval

from .test_detection import gt, random_case


def shifted(preds: list[ImageBoxes], dx: float) -> list[ImageBoxes]:
    """The same detections moved ``dx`` pixels right: a worse detector on the same images."""
    return [ImageBoxes(p.boxes + np.array([dx, 0, dx, 0]), p.labels, p.scores) for p in preds]


def test_each_detector_gets_what_its_own_report_gets_on_the_same_resamples() -> None:
    truth, preds = random_case(3, n_images=30, n_classes=1)
    truth[0] = gt()  # a negative image
    groups = np.repeat(np.arange(15), 2)
    scores = resampled_detection_scores(
        truth, {"good": preds, "worse": shifted(preds, 6.0)}, n_classes=1, groups=groups, n_resamples=150, seed=4
    )
    for name, boxes in (("good", preds), ("worse", shifted(preds, 6.0))):
        report = detection_report(truth, boxes, class_names=["fx"], groups=groups, n_resamples=150, seed=4)
        values = scores.resampled[name]
        assert scores.point[name]["map50"] == pytest.approx(report["map50"]["estimate"])
        assert scores.point[name]["froc_mean_sensitivity"] == pytest.approx(
            report["froc"]["mean_sensitivity"]["estimate"]
        )
        for stat, block in (("map50", report["map50"]), ("map50_95", report["map50_95"])):
            assert values[stat].shape == (150,)
            low, high = np.nanquantile(values[stat], [0.025, 0.975])
            assert (low, high) == pytest.approx((block["low"], block["high"]))


def test_a_detector_against_itself_differs_by_nothing() -> None:
    truth, preds = random_case(5, n_images=20, n_classes=2)
    result = paired_detection_test(truth, preds, preds, n_classes=2, n_resamples=100)
    for stat in ("map50", "map50_95", "froc_mean_sensitivity"):
        r = result[stat]
        assert r["a"] == r["b"] and r["difference"]["estimate"] == 0.0 and r["p_value"] == 1.0
        assert r["difference"]["low"] == r["difference"]["high"] == 0.0
        assert r["ratio"]["estimate"] == r["ratio"]["low"] == r["ratio"]["high"] == 1.0


def test_a_better_detector_is_better_on_every_statistic() -> None:
    truth, preds = random_case(7, n_images=40, n_classes=1)
    result = paired_detection_test(truth, preds, shifted(preds, 8.0), n_classes=1, n_resamples=300)
    for stat in ("map50", "map50_95", "froc_mean_sensitivity"):
        r = result[stat]
        assert r["a"] > r["b"] and r["difference"]["low"] > 0 and r["p_value"] < 0.05
        assert 1.0 < r["ratio"]["low"] <= r["ratio"]["estimate"] <= r["ratio"]["high"]
    swapped = paired_detection_test(truth, shifted(preds, 8.0), preds, n_classes=1, n_resamples=300)
    assert swapped["map50"]["difference"]["estimate"] == pytest.approx(-result["map50"]["difference"]["estimate"])
    assert swapped["map50"]["ratio"]["estimate"] == pytest.approx(1 / result["map50"]["ratio"]["estimate"])


def test_a_ratio_over_zero_is_infinite_and_zero_over_zero_is_dropped() -> None:
    a = np.array([0.2, 0.4, 0.0, 0.3])
    b = np.array([0.1, 0.0, 0.0, 0.3])
    ratio = ratio_interval(0.3, 0.1, a, b, confidence=0.5)
    assert ratio["estimate"] == pytest.approx(3.0)
    assert ratio["n_resamples"] == 4 and ratio["n_valid"] == 3  # 0/0 dropped
    assert ratio["low"] == 1.0 and ratio["high"] == np.inf  # order statistics of 1, 2, inf
    assert ratio_interval(0.2, 0.0, a, b)["estimate"] == np.inf
    empty = ratio_interval(0.0, 0.0, np.zeros(3), np.zeros(3))
    assert np.isnan(empty["estimate"]) and np.isnan(empty["low"]) and empty["n_valid"] == 0


def test_bad_inputs_are_refused() -> None:
    truth, preds = random_case(1, n_images=5, n_classes=1)
    with pytest.raises(MetricInputError, match="predictions is empty"):
        resampled_detection_scores(truth, {}, n_classes=1)
    with pytest.raises(MetricInputError, match="truth has 5 images but predictions 4"):
        paired_detection_test(truth, preds, preds[:4], n_classes=1)
