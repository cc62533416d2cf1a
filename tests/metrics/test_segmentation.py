"""Segmentation metrics against hand-computed masks, against MONAI, the empty-mask policy and the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from osteon.metrics import bootstrap_ci
from osteon.metrics._common import MetricInputError
from osteon.metrics.segmentation import (
    average_surface_distance,
    dice_score,
    hausdorff_distance_95,
    jaccard_score,
    mask_metrics,
    nanmean_score,
    segmentation_report,
)


def _box(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_dice_and_iou_of_hand_computed_masks() -> None:
    truth = _box((6, 6), slice(0, 2), slice(0, 3))  # 6 pixels
    pred = _box((6, 6), slice(0, 2), slice(1, 5))  # 8 pixels, 4 shared
    assert dice_score(truth, pred) == pytest.approx(2 * 4 / (6 + 8))
    assert jaccard_score(truth, pred) == pytest.approx(4 / 10)


def test_hausdorff_of_shifted_squares_in_pixels_and_mm() -> None:
    truth = _box((20, 20), slice(5, 10), slice(5, 10))
    pred = _box((20, 20), slice(5, 10), slice(8, 13))  # shifted 3 columns
    assert hausdorff_distance_95(truth, pred) == pytest.approx(3.0)
    assert hausdorff_distance_95(truth, pred, spacing=(0.5, 2.0)) == pytest.approx(6.0)  # columns are 2 mm wide
    assert hausdorff_distance_95(truth, pred, spacing=(2.0, 0.5)) == pytest.approx(1.5)
    assert 0 < average_surface_distance(truth, pred) < 3.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_monai_on_random_masks(seed: int) -> None:
    from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance, compute_iou

    rng = np.random.default_rng(seed)
    truth = rng.random((3, 24, 31)) > 0.7
    pred = rng.random((3, 24, 31)) > 0.6
    ours = mask_metrics(truth, pred, spacing=(0.7, 1.3))
    t, p = torch.from_numpy(truth)[None].float(), torch.from_numpy(pred)[None].float()
    np.testing.assert_allclose(ours["dice"], compute_dice(p, t, include_background=True)[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours["iou"], compute_iou(p, t, include_background=True)[0].numpy(), rtol=1e-6)
    hd = compute_hausdorff_distance(p, t, include_background=True, percentile=95, spacing=[0.7, 1.3])[0].numpy()
    np.testing.assert_allclose(ours["hd95"], hd, rtol=1e-6)
    asd = compute_average_surface_distance(p, t, include_background=True, symmetric=True, spacing=[0.7, 1.3])
    np.testing.assert_allclose(ours["asd"], asd[0].numpy(), rtol=1e-6)


def test_dice_is_symmetric_and_one_for_identical_masks() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.random((16, 16)) > 0.5, rng.random((16, 16)) > 0.5
    assert dice_score(a, b) == pytest.approx(dice_score(b, a))
    assert dice_score(a, a) == 1.0 and hausdorff_distance_95(a, a) == 0.0


def test_empty_mask_policy() -> None:
    empty = np.zeros((8, 8), dtype=bool)
    blob = _box((8, 8), slice(2, 4), slice(2, 4))
    both = mask_metrics(empty, empty)
    assert (both["dice"][0], both["iou"][0], both["hd95"][0], both["asd"][0]) == (1.0, 1.0, 0.0, 0.0)
    for truth, pred in ((empty, blob), (blob, empty)):
        one = mask_metrics(truth, pred)
        assert one["dice"][0] == 0.0 and one["iou"][0] == 0.0
        assert np.isnan(one["hd95"][0]) and np.isnan(one["asd"][0])


@pytest.mark.parametrize(
    ("truth", "pred", "kwargs", "message"),
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), {}, "same shape"),
        (np.full((4, 4), 2), np.zeros((4, 4)), {}, "binary"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"spacing": (1.0, -1.0)}, "spacing"),
        (np.zeros((2, 2, 4, 4)), np.zeros((2, 2, 4, 4)), {}, r"\(K, H, W\)"),
    ],
)
def test_bad_inputs_raise(truth: np.ndarray, pred: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        mask_metrics(truth, pred, **kwargs)


# -- aggregation ----------------------------------------------------------------------------------------------------
def test_nanmean_batched_form_matches_the_plain_bootstrap() -> None:
    rng = np.random.default_rng(0)
    values = rng.random(30)
    values[[3, 7]] = np.nan
    groups = np.repeat(np.arange(10), 3)
    fast = bootstrap_ci(nanmean_score, values, groups=groups, n_resamples=200, seed=1)
    slow = bootstrap_ci(nanmean_score, values, groups=groups, n_resamples=200, seed=1, vectorize=False)
    assert fast.estimate == pytest.approx(np.nanmean(values))
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high))


def _per_image(truths: list[np.ndarray], preds: list[np.ndarray]) -> dict[str, np.ndarray]:
    rows = [mask_metrics(t, p) for t, p in zip(truths, preds, strict=True)]
    return {key: np.stack([r[key] for r in rows]) for key in rows[0]}


def test_report_means_rates_and_counts() -> None:
    shape = (12, 12)
    empty = np.zeros(shape, dtype=bool)
    blob = _box(shape, slice(2, 6), slice(2, 6))
    elsewhere = _box(shape, slice(8, 11), slice(8, 11))
    half = _box(shape, slice(2, 6), slice(2, 4))
    truths = [blob, blob, blob, empty, empty]
    preds = [blob, half, elsewhere, empty, elsewhere]  # hit, hit, found-but-missed, TN, FP
    report = segmentation_report(
        _per_image(truths, preds), class_names=["fracture"], groups=["a", "a", "b", "c", "d"], n_resamples=200
    )
    dice_half = 2 * 8 / (16 + 8)
    assert report["dice"]["estimate"] == pytest.approx((1 + dice_half + 0 + 1 + 0) / 5)
    assert report["dice_positive"]["estimate"] == pytest.approx((1 + dice_half + 0) / 3)
    assert report["detection_rate"]["estimate"] == pytest.approx(2 / 3)
    assert report["image_sensitivity"]["estimate"] == pytest.approx(1.0)
    assert report["false_positive_rate"]["estimate"] == pytest.approx(1 / 2)
    assert report["n_distance_undefined"] == 1 and report["n_truth_positive"] == 3 and report["n_truth_empty"] == 2
    # HD95 over the images where both masks have foreground: 0 (identical), 2 (half), elsewhere
    hd_elsewhere = mask_metrics(blob, elsewhere)["hd95"][0]
    assert report["hd95"]["estimate"] == pytest.approx((0 + 2 + hd_elsewhere + 0) / 4)
    for key in ("dice", "iou", "hd95", "detection_rate"):
        assert report[key]["low"] <= report[key]["estimate"] <= report[key]["high"]
    assert report["distance_unit"] == "px" and "empty" in report["empty_mask_policy"]


def test_multiclass_report_averages_classes_per_image() -> None:
    shape = (10, 10)
    a = _box(shape, slice(0, 4), slice(0, 4))
    b = _box(shape, slice(5, 9), slice(5, 9))
    truth = np.stack([a, b])
    pred = np.stack([a, np.zeros(shape, dtype=bool)])  # class 1 perfect, class 2 missed
    per_image = _per_image([truth, truth], [pred, truth])
    report = segmentation_report(per_image, class_names=["bone", "fracture"], n_resamples=100)
    assert report["per_class"]["bone"]["dice"]["estimate"] == pytest.approx(1.0)
    assert report["per_class"]["fracture"]["dice"]["estimate"] == pytest.approx(0.5)
    assert report["dice"]["estimate"] == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(MetricInputError, match="classes"):
        segmentation_report(per_image, class_names=["only_one"])


def test_overlap_only_metrics_skip_the_distances() -> None:
    truth = np.zeros((2, 8, 8), bool)
    truth[0, 2:5, 2:5] = True
    pred = np.zeros((2, 8, 8), bool)
    pred[0, 3:6, 3:6] = True
    full = mask_metrics(truth, pred)
    fast = mask_metrics(truth, pred, distances=False)
    np.testing.assert_allclose(fast["dice"], full["dice"])
    assert full["hd95"][0] > 0 and np.isnan(fast["hd95"]).all() and np.isnan(fast["asd"]).all()
