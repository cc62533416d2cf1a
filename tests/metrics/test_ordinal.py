"""Ordinal metrics: weighted kappa vs sklearn and properties, grade error, within-one, per-grade cuts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from osteon.metrics import (
    UndefinedMetricWarning,
    linear_weighted_kappa_score,
    mean_absolute_grade_error,
    per_grade_metrics,
    quadratic_weighted_kappa_score,
    within_one_accuracy_score,
)

grade_pairs = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 4), min_size=n, max_size=n), st.lists(st.integers(0, 4), min_size=n, max_size=n)
    )
)


def _kl(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    return y, np.clip(y + rng.integers(-1, 2, n) * (rng.random(n) < 0.5), 0, 4)


def test_kappas_equal_sklearn() -> None:
    y, p = _kl(0)
    assert quadratic_weighted_kappa_score(y, p) == pytest.approx(skm.cohen_kappa_score(y, p, weights="quadratic"))
    assert linear_weighted_kappa_score(y, p) == pytest.approx(skm.cohen_kappa_score(y, p, weights="linear"))


def test_kappa_by_hand() -> None:
    # one KL3 called KL4: observed weighted disagreement 1, chance 115/5 = 23 -> 1 - 1/23
    assert quadratic_weighted_kappa_score([0, 1, 2, 3, 4], [0, 1, 2, 4, 4]) == pytest.approx(1 - 1 / 23)
    assert quadratic_weighted_kappa_score([0, 1, 2], [0, 1, 2]) == 1.0


def test_grade_distance_uses_the_declared_scale() -> None:
    # grade 2 never occurs: without n_grades the indices still carry the distance 1 -> 3
    y, p = [0, 1, 3, 4, 4, 0], [0, 3, 3, 4, 1, 1]
    expected = skm.cohen_kappa_score(y, p, weights="quadratic", labels=np.arange(5))
    assert quadratic_weighted_kappa_score(y, p) == pytest.approx(expected)
    assert quadratic_weighted_kappa_score(y, p, n_grades=5) == pytest.approx(expected)
    compressed = skm.cohen_kappa_score(y, p, weights="quadratic")  # sklearn's default squeezes grade 2 out
    assert quadratic_weighted_kappa_score(y, p) != pytest.approx(compressed)


@settings(max_examples=50, deadline=None)
@given(pair=grade_pairs)
def test_kappa_is_symmetric_and_bounded(pair) -> None:  # type: ignore[no-untyped-def]
    y, p = np.asarray(pair[0]), np.asarray(pair[1])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for fn in (quadratic_weighted_kappa_score, linear_weighted_kappa_score):
            a, b = fn(y, p, n_grades=5), fn(p, y, n_grades=5)
            assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12)
            assert np.isnan(a) or -1.0 - 1e-12 <= a <= 1.0 + 1e-12


def test_kappa_undefined_when_both_raters_use_one_grade() -> None:
    with pytest.warns(UndefinedMetricWarning, match="kappa is undefined"):
        assert np.isnan(quadratic_weighted_kappa_score([2, 2, 2], [2, 2, 2], n_grades=5))


def test_grade_error_and_within_one_by_hand_and_vs_sklearn() -> None:
    assert mean_absolute_grade_error([0, 1, 2, 3], [0, 2, 2, 1]) == 0.75
    assert within_one_accuracy_score([0, 1, 2, 3], [0, 2, 4, 3]) == 0.75
    assert within_one_accuracy_score([0, 1, 2, 3], [0, 2, 4, 3], tolerance=2) == 1.0
    y, p = _kl(1)
    assert mean_absolute_grade_error(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert within_one_accuracy_score(y, p) == 1.0  # the generator never errs by more than one grade


def test_per_grade_table_by_hand() -> None:
    # true 0 1 2 2 ; pred 0 2 2 1
    t = per_grade_metrics([0, 1, 2, 2], [0, 2, 2, 1], n_grades=3)
    np.testing.assert_allclose(t["one_vs_rest"]["sensitivity"], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(t["one_vs_rest"]["specificity"], [1.0, 2 / 3, 0.5])
    # grade >= 1: positives 1,2,2 all predicted >= 1 -> sens 1 ; negative 0 predicted 0 -> spec 1
    # grade >= 2: positives 2,2 -> one predicted >= 2 ; negatives 0,1 -> the 1 predicted 2 -> spec 1/2
    np.testing.assert_allclose(t["at_least"]["sensitivity"], [1.0, 0.5])
    np.testing.assert_allclose(t["at_least"]["specificity"], [1.0, 0.5])
    # cumulative cut equals sklearn on the dichotomised labels
    y, p = _kl(2)
    t = per_grade_metrics(y, p, n_grades=5)
    for k in range(1, 5):
        assert t["at_least"]["sensitivity"][k - 1] == pytest.approx(skm.recall_score(y >= k, p >= k))
        assert t["at_least"]["specificity"][k - 1] == pytest.approx(skm.recall_score(y < k, p < k))
