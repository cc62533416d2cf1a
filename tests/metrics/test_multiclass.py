"""Multiclass and multilabel metrics against scikit-learn and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from osteon.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    per_class_metrics,
    per_class_roc_auc_score,
    per_label_roc_auc_score,
)


@pytest.fixture
def labels() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 250)
    pred = np.where(rng.random(250) < 0.6, y, rng.integers(0, 4, 250))
    return y, pred


def test_accuracy_and_balanced_accuracy_equal_sklearn(labels) -> None:  # type: ignore[no-untyped-def]
    y, p = labels
    assert accuracy_score(y, p) == pytest.approx(skm.accuracy_score(y, p))
    assert balanced_accuracy_score(y, p) == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert balanced_accuracy_score(y, p, n_classes=4) == pytest.approx(skm.balanced_accuracy_score(y, p))


def test_balanced_accuracy_by_hand() -> None:
    # class 0: 2 of 3 right, class 1: 1 of 1 right -> (2/3 + 1) / 2
    assert balanced_accuracy_score([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(5 / 6)


def test_balanced_accuracy_over_declared_classes_is_nan_when_one_is_absent() -> None:
    y, p = [0, 0, 1, 1], [0, 2, 1, 1]
    assert balanced_accuracy_score(y, p) == pytest.approx(0.75)  # sklearn: classes present in y_true
    with pytest.warns(UndefinedMetricWarning, match=r"classes \[2\]"):
        assert np.isnan(balanced_accuracy_score(y, p, n_classes=3))


def test_confusion_matrix_equals_sklearn_and_keeps_absent_classes(labels) -> None:  # type: ignore[no-untyped-def]
    y, p = labels
    np.testing.assert_array_equal(confusion_matrix(y, p), skm.confusion_matrix(y, p))
    cm = confusion_matrix([0, 1, 1], [1, 1, 1], n_classes=3)
    np.testing.assert_array_equal(cm, [[0, 1, 0], [0, 2, 0], [0, 0, 0]])


def test_per_class_metrics_by_hand() -> None:
    # true 0 0 1 1 2 ; pred 0 1 1 1 0
    with pytest.warns(UndefinedMetricWarning, match=r"ppv of classes \[2\]"):  # nothing called class 2
        m = per_class_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(m["support"], [2, 2, 1])
    # class 0: tp 1, fn 1, fp 1 (the 2 called 0), tn 2
    # class 1: tp 2, fn 0, fp 1, tn 2 ; class 2: tp 0, fn 1, fp 0, tn 4
    np.testing.assert_allclose(m["sensitivity"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(m["specificity"], [2 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(m["ppv"], [0.5, 2 / 3, np.nan])


def test_per_class_sensitivity_equals_sklearn_recall(labels) -> None:  # type: ignore[no-untyped-def]
    y, p = labels
    m = per_class_metrics(y, p, n_classes=4)
    np.testing.assert_allclose(m["sensitivity"], skm.recall_score(y, p, average=None))
    np.testing.assert_allclose(m["ppv"], skm.precision_score(y, p, average=None))
    spec = [skm.recall_score(y != c, p != c) for c in range(4)]
    np.testing.assert_allclose(m["specificity"], spec)


def test_per_class_auc_equals_sklearn_one_vs_rest() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 120)
    proba = rng.dirichlet(np.ones(3), size=120) + 0.3 * np.eye(3)[y]
    expected = [skm.roc_auc_score(y == c, proba[:, c]) for c in range(3)]
    np.testing.assert_allclose(per_class_roc_auc_score(y, proba), expected)
    with pytest.warns(UndefinedMetricWarning, match=r"classes \[2\]"):
        out = per_class_roc_auc_score(np.where(y == 2, 0, y), proba)
    assert np.isnan(out[2]) and np.isfinite(out[:2]).all()


def test_per_label_auc_equals_sklearn_per_column_and_flags_constant_labels() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=(80, 3))
    s = rng.normal(size=(80, 3)) + y
    np.testing.assert_allclose(per_label_roc_auc_score(y, s), skm.roc_auc_score(y, s, average=None))
    y[:, 1] = 1
    with pytest.warns(UndefinedMetricWarning, match=r"columns \[1\]"):
        out = per_label_roc_auc_score(y, s)
    assert np.isnan(out[1])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: accuracy_score([0, 1], [0]), "lengths"),
        (lambda: confusion_matrix([0, 5], [0, 1], n_classes=3), "only 3 classes"),
        (lambda: per_class_metrics([0.5, 1], [0, 1]), "integer class indices"),
        (lambda: per_label_roc_auc_score([[0, 1]], [[0.1, 0.2, 0.3]]), "same shape"),
        (lambda: per_class_roc_auc_score([0, -1], [[0.5, 0.5], [0.5, 0.5]]), ">= 0"),
    ],
)
def test_malformed_input_raises(call, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MetricInputError, match=match):
        call()
