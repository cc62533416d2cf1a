"""Regression metrics against scikit-learn/scipy, Bland–Altman by hand, undefined cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn import metrics as skm

from osteon.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    bland_altman,
    mean_absolute_error,
    pearson_r_score,
    r2_score,
    root_mean_squared_error,
)


@pytest.fixture
def bone_age() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    months = rng.uniform(12, 216, 200)
    return months, months + 3.0 + rng.normal(scale=8.0, size=200)


def test_metrics_equal_sklearn_and_scipy(bone_age) -> None:  # type: ignore[no-untyped-def]
    y, p = bone_age
    assert mean_absolute_error(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert root_mean_squared_error(y, p) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert r2_score(y, p) == pytest.approx(skm.r2_score(y, p))
    assert pearson_r_score(y, p) == pytest.approx(stats.pearsonr(y, p).statistic)


def test_bland_altman_by_hand() -> None:
    ba = bland_altman([10.0, 20.0, 30.0, 40.0], [12.0, 19.0, 33.0, 40.0])
    # differences 2, -1, 3, 0: mean 1, sample variance (1 + 4 + 4 + 1) / 3
    assert ba["mean_difference"] == pytest.approx(1.0)
    assert ba["sd"] == pytest.approx(np.sqrt(10 / 3))
    assert ba["loa_low"] == pytest.approx(1.0 - 1.96 * np.sqrt(10 / 3))
    assert ba["loa_high"] == pytest.approx(1.0 + 1.96 * np.sqrt(10 / 3))


def test_bland_altman_bias_sign_is_prediction_minus_reference(bone_age) -> None:  # type: ignore[no-untyped-def]
    y, p = bone_age
    ba = bland_altman(y, p)
    assert ba["mean_difference"] == pytest.approx(np.mean(p - y))
    assert ba["mean_difference"] > 0  # the model over-estimates by 3 months
    assert ba["sd"] == pytest.approx(np.std(p - y, ddof=1))


@settings(max_examples=40, deadline=None)
@given(
    xs=st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=3, max_size=30).filter(
        lambda v: np.ptp([a for a, _ in v]) > 1e-3 and np.ptp([b for _, b in v]) > 1e-3
    )
)
def test_pearson_is_symmetric_and_matches_scipy(xs) -> None:  # type: ignore[no-untyped-def]
    a = np.array([x for x, _ in xs])
    b = np.array([y for _, y in xs])
    r = pearson_r_score(a, b)
    assert r == pytest.approx(pearson_r_score(b, a), abs=1e-9)
    assert r == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-9)


def test_constant_reference_makes_r2_and_r_undefined() -> None:
    with pytest.warns(UndefinedMetricWarning, match="R²"):
        assert np.isnan(r2_score([5.0, 5.0, 5.0], [4.0, 5.0, 6.0]))  # sklearn would say 0.0
    with pytest.warns(UndefinedMetricWarning, match="Pearson"):
        assert np.isnan(pearson_r_score([5.0, 5.0, 5.0], [4.0, 5.0, 6.0]))
    with pytest.warns(UndefinedMetricWarning, match="limits of agreement"):
        assert np.isnan(bland_altman([1.0], [2.0])["sd"])


def test_non_finite_values_raise() -> None:
    with pytest.raises(MetricInputError, match="NaN"):
        mean_absolute_error([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(MetricInputError, match="lengths"):
        root_mean_squared_error([1.0, 2.0], [1.0])
