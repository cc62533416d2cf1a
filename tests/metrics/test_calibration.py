"""Calibration: reliability curve and Brier score vs sklearn, ECE by hand and on calibrated data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import calibration as skc
from sklearn import metrics as skm

from osteon.metrics import MetricInputError, brier_score_loss, calibration_curve, expected_calibration_error


def test_curve_and_brier_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = (rng.random(500) < p**2).astype(int)
    for strategy in ("uniform", "quantile"):
        got = calibration_curve(y, p, n_bins=8, strategy=strategy)
        expected = skc.calibration_curve(y, p, n_bins=8, strategy=strategy)
        np.testing.assert_allclose(got[0], expected[0])
        np.testing.assert_allclose(got[1], expected[1])
    assert brier_score_loss(y, p) == pytest.approx(skm.brier_score_loss(y, p))


def test_ece_by_hand() -> None:
    # bin [0, .5): p .1 .3, observed 0 0 -> gap |0 - .4| = .4 (sum) ; bin [.5, 1]: p .6 .9, observed 2 -> |2 - 1.5|
    assert expected_calibration_error([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9], n_bins=2) == pytest.approx(0.9 / 4)


def test_ece_matches_the_reliability_curve() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(2000)
    y = (rng.random(2000) < np.sqrt(p)).astype(int)  # under-confident model
    prob_true, prob_pred = skc.calibration_curve(y, p, n_bins=10)
    counts = np.histogram(p, bins=np.linspace(0, 1, 11))[0]
    expected = np.sum(counts[counts > 0] / len(p) * np.abs(prob_true - prob_pred))
    assert expected_calibration_error(y, p, n_bins=10) == pytest.approx(expected)


def test_ece_is_small_for_a_calibrated_model_and_large_for_an_overconfident_one() -> None:
    rng = np.random.default_rng(2)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.02
    overconfident = np.clip((p - 0.5) * 3 + 0.5, 0, 1)
    assert expected_calibration_error(y, overconfident) > 0.1


def test_multiclass_top_label_ece_by_hand() -> None:
    proba = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    y = np.array([0, 1, 1, 2])
    # confidences .9 (right) .8 (wrong) .7 (right) .4 (right); 2 bins: [0, .5): .4 -> |1 - .4| ;
    # [.5, 1]: .9 .8 .7 -> |2 - 2.4|
    assert expected_calibration_error(y, proba, n_bins=2) == pytest.approx((0.6 + 0.4) / 4)


def test_probabilities_outside_unit_interval_raise() -> None:
    with pytest.raises(MetricInputError, match="sigmoid"):
        brier_score_loss([0, 1], [-0.5, 2.0])
    with pytest.raises(MetricInputError, match="n_bins"):
        expected_calibration_error([0, 1], [0.2, 0.8], n_bins=0)
