"""DeLong's test: hand case, the O(m n) definition, sklearn AUCs, bootstrap variance, identical scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from osteon.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    bootstrap_resample_counts,
    delong_ci,
    delong_covariance,
    delong_test,
)
from osteon.metrics.classification import binary_auc_batched


def naive_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) straight from the definition: the full (m, n) kernel matrix per model."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])  # (K, m, n)
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)  # structural components of positives / negatives
    m, n = pos.shape[1], neg.shape[1]
    return psi.mean(axis=(1, 2)), np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n


def test_variance_by_hand() -> None:
    # positives 0.8, 0.4 ; negatives 0.6, 0.2
    # V10: 0.8 beats both -> 1 ; 0.4 beats 0.2 only -> 0.5 ; sample variance 0.125
    # V01: 0.6 beaten by 0.8 only -> 0.5 ; 0.2 beaten by both -> 1 ; sample variance 0.125
    # var(AUC) = 0.125 / 2 + 0.125 / 2 = 0.125
    aucs, cov = delong_covariance([1, 1, 0, 0], [0.8, 0.4, 0.6, 0.2])
    assert aucs[0] == pytest.approx(0.75)
    assert cov[0, 0] == pytest.approx(0.125)
    ci = delong_ci([1, 1, 0, 0], [0.8, 0.4, 0.6, 0.2], confidence=0.5)
    half = stats.norm.ppf(0.75) * np.sqrt(0.125)
    assert (ci.low, ci.high) == pytest.approx((0.75 - half, 0.75 + half))


def test_fast_algorithm_equals_the_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 150)
    truth = rng.normal(size=150) + y
    scores = np.round(np.vstack([truth + rng.normal(size=150), truth + 2 * rng.normal(size=150)]), 1)
    aucs, cov = delong_covariance(y, scores)
    ref_aucs, ref_cov = naive_delong(y, scores)
    np.testing.assert_allclose(aucs, ref_aucs, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-12)
    for k in range(2):
        assert aucs[k] == pytest.approx(skm.roc_auc_score(y, scores[k]), abs=1e-12)


def test_test_statistic_follows_from_the_covariance() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    a = rng.normal(size=200) + 1.2 * y
    b = a + rng.normal(scale=1.5, size=200)
    auc_a, auc_b, z, p = delong_test(y, a, b)
    ref_aucs, ref_cov = naive_delong(y, np.vstack([a, b]))
    expected_z = (ref_aucs[0] - ref_aucs[1]) / np.sqrt(ref_cov[0, 0] + ref_cov[1, 1] - 2 * ref_cov[0, 1])
    assert (auc_a, auc_b) == pytest.approx((skm.roc_auc_score(y, a), skm.roc_auc_score(y, b)))
    assert z == pytest.approx(expected_z)
    assert p == pytest.approx(2 * stats.norm.sf(abs(expected_z)))
    assert z > 0 and p < 0.05
    # swapping the models flips z, keeps p
    _, _, z2, p2 = delong_test(y, b, a)
    assert z2 == pytest.approx(-z) and p2 == pytest.approx(p)


def test_identical_scores_give_p_one() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 100)
    s = rng.normal(size=100) + y
    auc_a, auc_b, z, p = delong_test(y, s, s.copy())
    assert auc_a == auc_b and z == 0.0 and p == 1.0
    # a strictly monotone transform ranks the same: same AUC, p = 1
    assert delong_test(y, s, np.exp(s))[3] == 1.0


def test_delong_variance_agrees_with_the_bootstrap_variance() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    y = (rng.random(n) < 0.4).astype(int)
    truth = rng.normal(size=n) + 1.0 * y
    a = truth + 0.5 * rng.normal(size=n)
    b = truth + 1.0 * rng.normal(size=n)
    _, cov = delong_covariance(y, np.vstack([a, b]))
    weights = bootstrap_resample_counts(n, n_resamples=2000, seed=0).astype(float)
    boot_a, boot_b = binary_auc_batched(weights, y, a), binary_auc_batched(weights, y, b)
    assert np.var(boot_a, ddof=1) == pytest.approx(cov[0, 0], rel=0.15)
    assert np.var(boot_b, ddof=1) == pytest.approx(cov[1, 1], rel=0.15)
    var_diff = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert np.var(boot_a - boot_b, ddof=1) == pytest.approx(var_diff, rel=0.15)
    ci = delong_ci(y, a)
    boot_width = np.diff(np.quantile(boot_a, [0.025, 0.975]))[0]
    assert ci.high - ci.low == pytest.approx(boot_width, rel=0.15)
    assert ci.n_resamples == 0


def test_too_few_samples_of_a_class() -> None:
    with pytest.warns(UndefinedMetricWarning, match="DeLong test"):
        out = delong_test([1, 0, 0], [0.9, 0.1, 0.2], [0.8, 0.3, 0.1])
    assert all(np.isnan(v) for v in out)
    with pytest.warns(UndefinedMetricWarning, match="DeLong CI"):
        ci = delong_ci([1, 0, 0], [0.9, 0.1, 0.2])
    assert ci.estimate == 1.0 and np.isnan(ci.low)
    with pytest.raises(MetricInputError, match="at least 2 positive"):
        delong_covariance([1, 0, 0], [0.9, 0.1, 0.2])
    with pytest.raises(MetricInputError, match="lengths"):
        delong_test([1, 0, 1, 0], [0.9, 0.1, 0.2, 0.3], [0.8, 0.3])
