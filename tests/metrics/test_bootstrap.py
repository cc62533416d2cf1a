"""Bootstrap intervals: resampling by patient, dropped undefined resamples, batched == looped, speed."""

from __future__ import annotations

import functools
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osteon.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    accuracy_score,
    balanced_accuracy_score,
    bootstrap_ci,
    bootstrap_resample_counts,
    brier_score_loss,
    linear_weighted_kappa_score,
    mean_absolute_error,
    mean_absolute_grade_error,
    paired_bootstrap_test,
    pearson_r_score,
    ppv_score,
    quadratic_weighted_kappa_score,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
    sensitivity_score,
    within_one_accuracy_score,
)


# ------------------------------------------------------------------------------------ the resampler
def test_row_resampling_counts_sum_to_n_and_are_reproducible() -> None:
    counts = bootstrap_resample_counts(50, n_resamples=30, seed=3)
    assert counts.shape == (30, 50)
    assert (counts.sum(axis=1) == 50).all()
    np.testing.assert_array_equal(counts, bootstrap_resample_counts(50, n_resamples=30, seed=3))
    assert not np.array_equal(counts, bootstrap_resample_counts(50, n_resamples=30, seed=4))


def test_group_resampling_draws_patients_with_all_their_rows() -> None:
    # patients with 1, 2, 3 and 4 images, rows deliberately interleaved
    groups = np.array(["d", "a", "d", "b", "c", "d", "b", "c", "d", "c"])
    counts = bootstrap_resample_counts(len(groups), groups=groups, n_resamples=400, seed=11)
    n_patients = 4
    for row in counts:
        per_patient = {}
        for g in np.unique(groups):
            values = row[groups == g]
            assert (values == values[0]).all(), "every image of a patient must come along the same number of times"
            per_patient[g] = int(values[0])
        assert sum(per_patient.values()) == n_patients  # patients (not images) are drawn, n_patients times
    # the same draws again from the seed: patient-level multinomial counts
    rng = np.random.default_rng(11)
    draws = rng.integers(0, n_patients, size=(400, n_patients))
    codes = {"d": 0, "a": 1, "b": 2, "c": 3}  # order of first appearance
    expected = np.stack([np.bincount(d, minlength=n_patients) for d in draws])[:, [codes[g] for g in groups]]
    np.testing.assert_array_equal(counts, expected)
    # some patient is drawn twice in some resample, and then all its rows count twice
    twice = np.argwhere(counts == 2)
    assert len(twice) > 0
    r, i = twice[0]
    assert (counts[r, groups == groups[i]] == 2).all()


def test_loop_path_passes_each_drawn_patient_rows_exactly_count_times() -> None:
    groups = np.array([0, 0, 0, 1, 2, 2])
    row_ids = np.arange(6)
    seen: list[np.ndarray] = []

    def record(ids: np.ndarray) -> float:
        seen.append(np.sort(ids))
        return float(len(ids))

    bootstrap_ci(record, row_ids, groups=groups, n_resamples=25, seed=5)
    counts = bootstrap_resample_counts(6, groups=groups, n_resamples=25, seed=5)
    assert len(seen) == 26  # the estimate + 25 resamples
    for got, row in zip(seen[1:], counts, strict=True):
        np.testing.assert_array_equal(got, np.repeat(row_ids, row))


def test_groups_with_missing_ids_or_wrong_length_raise() -> None:
    with pytest.raises(MetricInputError, match="missing patient id"):
        bootstrap_resample_counts(3, groups=["a", None, "b"])
    with pytest.raises(MetricInputError, match="expected 3 values"):
        bootstrap_resample_counts(3, groups=["a", "b"])
    with pytest.raises(MetricInputError, match="confidence"):
        bootstrap_ci(roc_auc_score, [0, 1], [0.1, 0.2], confidence=95)
    with pytest.raises(MetricInputError, match="method"):
        bootstrap_ci(roc_auc_score, [0, 1], [0.1, 0.2], method="bca")
    with pytest.raises(MetricInputError, match="lengths"):
        bootstrap_ci(roc_auc_score, [0, 1, 1], [0.1, 0.2])


# ------------------------------------------------------------------------- batched == one call each
def _regression_pair(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.normal(size=n) * 10
    return y, y + rng.normal(size=n) * 4


@pytest.mark.parametrize(
    ("metric", "kind"),
    [
        (roc_auc_score, "binary_score"),
        (roc_auc_score, "proba"),
        (brier_score_loss, "binary_prob"),
        (sensitivity_score, "binary_pred"),
        (ppv_score, "binary_pred"),
        (accuracy_score, "labels"),
        (functools.partial(balanced_accuracy_score, n_classes=4), "labels"),
        (balanced_accuracy_score, "labels"),
        (functools.partial(quadratic_weighted_kappa_score, n_grades=4), "labels"),
        (linear_weighted_kappa_score, "labels"),
        (mean_absolute_grade_error, "labels"),
        (within_one_accuracy_score, "labels"),
        (mean_absolute_error, "regression"),
        (root_mean_squared_error, "regression"),
        (r2_score, "regression"),
        (pearson_r_score, "regression"),
    ],
)
def test_batched_form_matches_one_call_per_resample(metric, kind) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n = 60
    groups = rng.integers(0, 20, size=n)
    if kind == "binary_score":
        y = rng.integers(0, 2, n)
        arrays = (y, np.round(rng.normal(size=n) + y, 1))
    elif kind == "binary_prob":
        y = rng.integers(0, 2, n)
        arrays = (y, rng.random(n))
    elif kind == "binary_pred":
        arrays = (rng.integers(0, 2, n), rng.integers(0, 2, n))
    elif kind == "proba":
        arrays = (rng.integers(0, 3, n), rng.dirichlet(np.ones(3), size=n))
    elif kind == "labels":
        y = rng.integers(0, 4, n)
        arrays = (y, np.clip(y + rng.integers(-1, 2, n), 0, 3))
    else:
        arrays = _regression_pair(rng, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fast = bootstrap_ci(metric, *arrays, groups=groups, n_resamples=40, seed=1)
        slow = bootstrap_ci(metric, *arrays, groups=groups, n_resamples=40, seed=1, vectorize=False)
    assert fast.n_valid == slow.n_valid
    np.testing.assert_allclose([fast.estimate, fast.low, fast.high], [slow.estimate, slow.low, slow.high], atol=1e-9)


# --------------------------------------------------------------------------------- interval behaviour
def test_patient_level_interval_is_wider_than_image_level(make_clustered) -> None:  # type: ignore[no-untyped-def]
    y, score, groups = make_clustered(40, 10, seed=2)
    by_image = bootstrap_ci(roc_auc_score, y, score, n_resamples=500, seed=0)
    by_patient = bootstrap_ci(roc_auc_score, y, score, groups=groups, n_resamples=500, seed=0)
    assert by_image.estimate == by_patient.estimate
    assert (by_patient.high - by_patient.low) > 1.8 * (by_image.high - by_image.low)


def test_interval_narrows_with_more_data() -> None:
    rng = np.random.default_rng(4)
    widths = []
    for n in (100, 1600):
        y = rng.integers(0, 2, n)
        s = rng.normal(size=n) + y
        ci = bootstrap_ci(roc_auc_score, y, s, n_resamples=300, seed=0)
        widths.append(ci.high - ci.low)
    assert widths[1] < 0.5 * widths[0]  # ~ 1/sqrt(16) = 0.25 expected


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=40),
    seed=st.integers(0, 2**16),
)
def test_percentile_interval_contains_the_estimate_of_a_mean(values: list[float], seed: int) -> None:
    x = np.asarray(values)
    ci = bootstrap_ci(lambda a: float(np.mean(a)), x, n_resamples=200, seed=seed)
    assert ci.low - 1e-9 <= ci.estimate <= ci.high + 1e-9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(30, 120), shift=st.floats(0.0, 2.0))
def test_percentile_interval_contains_the_auc(seed: int, n: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 3), np.zeros(n - n // 3)].astype(int)
    s = rng.normal(size=n) + shift * y
    ci = bootstrap_ci(roc_auc_score, y, s, n_resamples=300, seed=seed)
    assert ci.low <= ci.estimate <= ci.high
    assert ci.low >= 0.0 and ci.high <= 1.0


def test_undefined_resamples_are_dropped_and_counted() -> None:
    y = np.array([1] + [0] * 9)  # one positive: resamples without it have no AUC
    s = np.linspace(0, 1, 10)
    with pytest.warns(UndefinedMetricWarning, match="resamples were undefined"):
        ci = bootstrap_ci(roc_auc_score, y, s, n_resamples=300, seed=8)
    counts = bootstrap_resample_counts(10, n_resamples=300, seed=8)
    assert ci.n_resamples == 300
    assert ci.n_valid == int((counts[:, 0] > 0).sum())  # all other rows are negatives
    assert 0 < ci.n_valid < 300


def test_basic_interval_is_the_percentile_interval_reflected() -> None:
    rng = np.random.default_rng(1)
    x = rng.exponential(size=80)
    pct = bootstrap_ci(lambda a: float(np.mean(a)), x, n_resamples=300, seed=2)
    basic = bootstrap_ci(lambda a: float(np.mean(a)), x, n_resamples=300, seed=2, method="basic")
    assert basic.low == pytest.approx(2 * pct.estimate - pct.high)
    assert basic.high == pytest.approx(2 * pct.estimate - pct.low)


def test_thousand_auc_resamples_on_thousand_rows_take_under_two_seconds() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    s = rng.normal(size=1000) + y
    start = time.perf_counter()
    bootstrap_ci(roc_auc_score, y, s, n_resamples=1000, seed=0)
    bootstrap_ci(roc_auc_score, y, s, groups=np.arange(1000) // 3, n_resamples=1000, seed=0)
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------------------------- paired comparison
def test_paired_test_of_identical_models_gives_zero_difference_and_p_one(binary_data) -> None:  # type: ignore[no-untyped-def]
    y, s = binary_data
    diff, ci, p = paired_bootstrap_test(roc_auc_score, y, s, s.copy(), n_resamples=200)
    assert diff == 0.0 and ci.low == 0.0 and ci.high == 0.0
    assert p == 1.0


def test_paired_test_detects_a_much_better_model(make_clustered) -> None:  # type: ignore[no-untyped-def]
    y, _, groups = make_clustered(100, 3, seed=3)
    rng = np.random.default_rng(0)
    s = 2.0 * y + rng.normal(size=len(y))  # AUC ~ 0.92
    weak = 0.5 * y + rng.normal(size=len(y))  # AUC ~ 0.64
    diff, ci, p = paired_bootstrap_test(roc_auc_score, y, s, weak, groups=groups, n_resamples=500, seed=1)
    assert diff > 0 and ci.low > 0
    assert p < 0.01
    # swapping the models flips the sign and keeps the p-value
    diff2, ci2, p2 = paired_bootstrap_test(roc_auc_score, y, weak, s, groups=groups, n_resamples=500, seed=1)
    assert diff2 == pytest.approx(-diff) and ci2.high == pytest.approx(-ci.low) and p2 == pytest.approx(p)


def test_paired_test_loop_path_matches_batched_path(binary_data) -> None:  # type: ignore[no-untyped-def]
    y, s = binary_data
    other = np.round(s + np.random.default_rng(2).normal(scale=0.3, size=len(s)), 2)
    fast = paired_bootstrap_test(roc_auc_score, y, s, other, n_resamples=60, seed=4)
    slow = paired_bootstrap_test(roc_auc_score, y, s, other, n_resamples=60, seed=4, vectorize=False)
    assert fast[0] == pytest.approx(slow[0])
    assert fast[1].low == pytest.approx(slow[1].low) and fast[1].high == pytest.approx(slow[1].high)
    assert fast[2] == pytest.approx(slow[2])
