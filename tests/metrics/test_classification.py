"""Binary metrics: AUC (vs sklearn, invariances, nan policy), ROC curve, thresholds, metrics at a threshold."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from osteon.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    binary_metrics_at_threshold,
    choose_threshold,
    npv_score,
    ppv_score,
    roc_auc_score,
    roc_curve,
    sensitivity_score,
    specificity_score,
)

labelled_scores = st.integers(4, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < len(y)),
        st.lists(st.integers(-20, 20), min_size=n, max_size=n),
    )
)


# ------------------------------------------------------------------------------------------------ AUC
def test_auc_equals_sklearn_with_ties(binary_data) -> None:  # type: ignore[no-untyped-def]
    y, s = binary_data
    assert roc_auc_score(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert roc_auc_score(y.astype(bool), s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_auc_by_hand() -> None:
    # positives 0.8, 0.4 vs negatives 0.6, 0.2: pairs won 1, 0, 1, 1 -> 3/4
    assert roc_auc_score([1, 1, 0, 0], [0.8, 0.4, 0.6, 0.2]) == 0.75
    # a tie counts one half
    assert roc_auc_score([1, 0], [0.5, 0.5]) == 0.5


def test_multiclass_macro_auc_equals_sklearn_ovr() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert roc_auc_score(y, proba) == pytest.approx(expected, abs=1e-12)
    # columns need not sum to 1: OvR ranks each column on its own
    per_column = [skm.roc_auc_score(y == c, logits[:, c]) for c in range(4)]
    assert roc_auc_score(y, logits) == pytest.approx(np.mean(per_column), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(data=labelled_scores, seed=st.integers(0, 1000))
def test_auc_invariant_to_monotone_transforms_and_sample_order(data, seed) -> None:  # type: ignore[no-untyped-def]
    y, s = np.asarray(data[0]), np.asarray(data[1], dtype=float)
    base = roc_auc_score(y, s)
    assert roc_auc_score(y, np.exp(s / 5.0)) == pytest.approx(base, abs=1e-12)
    assert roc_auc_score(y, 3.0 * s**3 - 7.0) == pytest.approx(base, abs=1e-12)
    perm = np.random.default_rng(seed).permutation(len(y))
    assert roc_auc_score(y[perm], s[perm]) == pytest.approx(base, abs=1e-12)
    assert roc_auc_score(y, -s) == pytest.approx(1.0 - base, abs=1e-12)
    assert base == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("y", [[1, 1, 1], [0, 0, 0, 0], []])
def test_auc_with_one_class_is_nan_with_warning(y: list[int]) -> None:
    with pytest.warns(UndefinedMetricWarning, match="AUC is undefined"):
        value = roc_auc_score(y, np.linspace(0, 1, len(y)))
    assert np.isnan(value)


def test_multiclass_auc_with_an_absent_class_is_nan_with_warning() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    with pytest.warns(UndefinedMetricWarning, match=r"classes \[2\]"):
        assert np.isnan(roc_auc_score([0, 1, 0], proba))


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([1, 2, 1], [0.1, 0.2, 0.3], "binary labels 0/1"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "NaN"),
        ([0, 1, 1], [0.1, 0.3], "lengths"),
        ([0, 3, 1], [[0.5, 0.5], [0.4, 0.6], [0.2, 0.8]], "only 2 classes"),
    ],
)
def test_auc_rejects_malformed_input(y, s, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MetricInputError, match=match):
        roc_auc_score(y, s)


# ------------------------------------------------------------------------------------------ ROC curve
def test_roc_curve_is_thinned_keeps_ends_and_has_finite_thresholds() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    s = rng.normal(size=5000) + 0.5 * y
    full_fpr, full_tpr, _ = skm.roc_curve(y, s)
    assert len(full_fpr) > 200
    fpr, tpr, thr = roc_curve(y, s, max_points=200)
    assert 2 < len(fpr) <= 200
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thr) < 0)
    assert np.isfinite(thr).all() and thr[0] > s.max()
    # thinning keeps points of the full curve, so the area barely moves
    assert np.trapezoid(tpr, fpr) == pytest.approx(np.trapezoid(full_tpr, full_fpr), abs=2e-3)


def test_roc_curve_with_one_class_is_empty_with_warning() -> None:
    with pytest.warns(UndefinedMetricWarning):
        fpr, tpr, thr = roc_curve([1, 1], [0.2, 0.4])
    assert len(fpr) == len(tpr) == len(thr) == 0


# ------------------------------------------------------------------------------------ operating point
def test_youden_by_hand() -> None:
    y = [0, 0, 0, 1, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9]
    # threshold 0.35 -> sens 4/4, spec 3/4: J = 0.75 (best); 0.6 -> sens 3/4, spec 4/4: J = 0.75 too
    # ties go to the highest threshold
    assert choose_threshold(y, s) == 0.6
    # make 0.35 strictly best
    assert choose_threshold([0, 0, 0, 1, 0, 1, 1, 1, 1], [*s, 0.36]) == 0.35


def test_sensitivity_target_picks_highest_threshold_reaching_it() -> None:
    y = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.2, 0.5, 0.45, 0.3, 0.1, 0.05])
    t = choose_threshold(y, s, method="sensitivity", target=0.9)
    assert t == 0.55  # 9/10 positives are >= 0.55; 0.6 would give 8/10
    assert binary_metrics_at_threshold(y, s, t)["sensitivity"] >= 0.9
    assert binary_metrics_at_threshold(y, s, np.nextafter(t, 1.0))["sensitivity"] < 0.9
    # target 1.0 needs the lowest positive
    assert choose_threshold(y, s, method="sensitivity", target=1.0) == 0.2


def test_specificity_target_picks_lowest_threshold_reaching_it() -> None:
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    t = choose_threshold(y, s, method="specificity", target=0.8)
    assert t == 0.5  # spec at 0.5 = 4/5; at 0.4 = 3/5
    t_all = choose_threshold(y, s, method="specificity", target=1.0)
    assert t_all == 0.7
    # with a negative above every positive, specificity 1 means calling nothing positive
    t_none = choose_threshold([1, 0], [0.2, 0.9], method="specificity", target=1.0)
    with pytest.warns(UndefinedMetricWarning, match="ppv"):
        assert t_none > 0.9 and binary_metrics_at_threshold([1, 0], [0.2, 0.9], t_none)["tp"] == 0


def test_threshold_chosen_on_validation_is_applied_unchanged_to_test() -> None:
    rng = np.random.default_rng(12)
    y_val = rng.integers(0, 2, 200)
    s_val = np.round(rng.normal(size=200) + 1.5 * y_val, 3)
    t = choose_threshold(y_val, s_val, method="sensitivity", target=0.85)
    assert t in set(s_val.tolist())
    y_test = rng.integers(0, 2, 150)
    s_test = np.round(rng.normal(size=150) + 1.5 * y_test, 3)
    s_test[:5] = t  # scores equal to the threshold are called positive
    m = binary_metrics_at_threshold(y_test, s_test, t)
    pred = s_test >= t
    assert m["tp"] == int(np.sum(pred & (y_test == 1)))
    assert m["fp"] == int(np.sum(pred & (y_test == 0)))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y_test, pred))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "f1"}, "method must be one of"),
        ({"method": "sensitivity"}, "needs target"),
        ({"method": "specificity", "target": 1.5}, "needs target"),
        ({"method": "youden", "target": 0.9}, "only used"),
    ],
)
def test_choose_threshold_rejects_bad_options(kwargs, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MetricInputError, match=match):
        choose_threshold([0, 1], [0.1, 0.9], **kwargs)


def test_choose_threshold_needs_both_classes() -> None:
    with pytest.raises(MetricInputError, match="both classes"):
        choose_threshold([1, 1, 1], [0.1, 0.5, 0.9])


# ------------------------------------------------------------------------------ metrics at a threshold
def _table(tp: int, fp: int, tn: int, fn: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.r_[np.ones(tp), np.zeros(fp), np.zeros(tn), np.ones(fn)].astype(int)
    s = np.r_[np.full(tp, 0.9), np.full(fp, 0.8), np.full(tn, 0.1), np.full(fn, 0.2)]
    return y, s


def test_two_by_two_table_by_hand() -> None:
    y, s = _table(tp=40, fp=10, tn=30, fn=20)
    m = binary_metrics_at_threshold(y, s, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (40, 10, 30, 20)
    assert m["sensitivity"] == pytest.approx(40 / 60)
    assert m["specificity"] == pytest.approx(30 / 40)
    assert m["ppv"] == pytest.approx(40 / 50)
    assert m["npv"] == pytest.approx(30 / 50)
    assert m["accuracy"] == pytest.approx(70 / 100)
    assert m["balanced_accuracy"] == pytest.approx((40 / 60 + 30 / 40) / 2)
    assert m["f1"] == pytest.approx(80 / 110)
    assert all(isinstance(m[k], int) for k in ("tp", "fp", "tn", "fn"))


def test_metrics_at_threshold_equal_sklearn(binary_data) -> None:  # type: ignore[no-untyped-def]
    y, s = binary_data
    m = binary_metrics_at_threshold(y, s, 0.5)
    pred = (s >= 0.5).astype(int)
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert m["ppv"] == pytest.approx(skm.precision_score(y, pred))
    assert m["npv"] == pytest.approx(skm.precision_score(y, pred, pos_label=0))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert sensitivity_score(y, pred) == pytest.approx(m["sensitivity"])
    assert specificity_score(y, pred) == pytest.approx(m["specificity"])
    assert ppv_score(y, pred) == pytest.approx(m["ppv"])
    assert npv_score(y, pred) == pytest.approx(m["npv"])


def test_undefined_rates_are_nan_with_one_warning() -> None:
    y, s = _table(tp=0, fp=0, tn=5, fn=3)  # nothing called positive
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = binary_metrics_at_threshold(y, s, 0.5)
    relevant = [w for w in caught if issubclass(w.category, UndefinedMetricWarning)]
    assert len(relevant) == 1 and "ppv" in str(relevant[0].message)
    assert np.isnan(m["ppv"])
    assert m["sensitivity"] == 0.0 and m["specificity"] == 1.0 and m["f1"] == 0.0
    with pytest.warns(UndefinedMetricWarning, match="sensitivity"):
        assert np.isnan(sensitivity_score([0, 0], [0, 1]))


def test_threshold_must_be_finite() -> None:
    with pytest.raises(MetricInputError, match="finite"):
        binary_metrics_at_threshold([0, 1], [0.1, 0.9], float("nan"))
