"""Report builders: JSON-able, estimates equal the metric functions, a CI on every interval-able number."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from osteon.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    binary_metrics_at_threshold,
    binary_report,
    bland_altman,
    bootstrap_ci,
    multiclass_report,
    ordinal_report,
    regression_report,
    roc_auc_score,
)

CI_KEYS = {"estimate", "low", "high", "n_valid"}


def _walk(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [item for k, v in obj.items() for item in _walk(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [item for i, v in enumerate(obj) for item in _walk(v, f"{path}[{i}]")]
    return [(path, obj)]


def _assert_plain_json(report: dict[str, Any]) -> None:
    for path, value in _walk(report):
        assert type(value) in (float, int, str, bool, type(None)), f"{path} is {type(value).__name__}"
    json.loads(json.dumps(report))


def _cis(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []

    def visit(obj: Any, path: str) -> None:
        if isinstance(obj, dict):
            if set(obj) == CI_KEYS:
                found.append((path, obj))
                return
            for k, v in obj.items():
                visit(v, f"{path}.{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                visit(v, f"{path}[{i}]")

    visit(report, "")
    return found


def _assert_cis_bracket_estimates(report: dict[str, Any]) -> None:
    for path, ci in _cis(report):
        if math.isfinite(ci["estimate"]):
            assert ci["low"] - 1e-9 <= ci["estimate"] <= ci["high"] + 1e-9, path


def test_binary_report(make_clustered) -> None:  # type: ignore[no-untyped-def]
    y, score, groups = make_clustered(80, 5, seed=0)
    prob = 1 / (1 + np.exp(-score))
    rep = binary_report(y, prob, threshold=0.6, groups=groups, n_resamples=300, seed=1)
    _assert_plain_json(rep)
    _assert_cis_bracket_estimates(rep)
    assert (rep["n"], rep["n_positive"], rep["threshold"]) == (400, int(y.sum()), 0.6)
    assert rep["auc"]["estimate"] == pytest.approx(skm.roc_auc_score(y, prob))
    at = binary_metrics_at_threshold(y, prob, 0.6)
    for key in ("sensitivity", "specificity", "ppv", "npv", "accuracy", "balanced_accuracy", "f1"):
        assert set(rep[key]) == CI_KEYS
        assert rep[key]["estimate"] == pytest.approx(at[key])
    assert rep["confusion_matrix"] == [[at["tn"], at["fp"]], [at["fn"], at["tp"]]]
    assert len(rep["roc_curve"]["fpr"]) <= 200 and rep["roc_curve"]["tpr"][-1] == 1.0
    assert rep["bootstrap"]["unit"] == "patient" and rep["bootstrap"]["n_units"] == 80
    # the interval is the one bootstrap_ci gives with the same patients and seed
    ci = bootstrap_ci(roc_auc_score, y, prob, groups=groups, n_resamples=300, seed=1)
    assert (rep["auc"]["low"], rep["auc"]["high"]) == pytest.approx((ci.low, ci.high))
    assert rep["calibration"]["brier"]["estimate"] == pytest.approx(skm.brier_score_loss(y, prob))


def test_binary_report_by_image_is_narrower_than_by_patient(make_clustered) -> None:  # type: ignore[no-untyped-def]
    y, score, groups = make_clustered(40, 10, seed=4)
    by_patient = binary_report(y, score, threshold=0.4, groups=groups, n_resamples=300)
    by_image = binary_report(y, score, threshold=0.4, n_resamples=300)
    assert by_image["bootstrap"]["unit"] == "image"
    assert "calibration" not in by_image  # scores are not probabilities
    for key in ("auc", "sensitivity", "specificity"):
        width_patient = by_patient[key]["high"] - by_patient[key]["low"]
        width_image = by_image[key]["high"] - by_image[key]["low"]
        assert width_patient > 1.5 * width_image, key


def test_binary_report_with_one_class_is_nan_not_an_error() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = binary_report([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.9], threshold=0.5, n_resamples=50)
    assert any(issubclass(w.category, UndefinedMetricWarning) for w in caught)
    assert math.isnan(rep["auc"]["estimate"]) and math.isnan(rep["sensitivity"]["estimate"])
    assert rep["specificity"]["estimate"] == 0.75
    assert rep["roc_curve"]["fpr"] == []
    json.dumps(rep)


def _multiclass_data(seed: int, n: int = 300, c: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba, rng.integers(0, n // 3, n)


def test_multiclass_report() -> None:
    y, proba, groups = _multiclass_data(0)
    names = ["normal", "fracture", "implant", "tumour"]
    rep = multiclass_report(y, proba, class_names=names, groups=groups, n_resamples=200)
    _assert_plain_json(rep)
    _assert_cis_bracket_estimates(rep)
    pred = proba.argmax(axis=1)
    assert rep["accuracy"]["estimate"] == pytest.approx(skm.accuracy_score(y, pred))
    assert rep["balanced_accuracy"]["estimate"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert rep["macro_auc"]["estimate"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert rep["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert [row["class"] for row in rep["per_class"]] == names
    recalls = skm.recall_score(y, pred, average=None)
    for row, recall in zip(rep["per_class"], recalls, strict=True):
        assert row["sensitivity"]["estimate"] == pytest.approx(recall)
        assert set(row["auc"]) == CI_KEYS and row["auc"]["low"] < row["auc"]["high"]


def test_ordinal_report() -> None:
    rng = np.random.default_rng(1)
    n = 300
    y = rng.integers(0, 5, n)
    centre = np.clip(y + rng.normal(scale=0.8, size=n), 0, 4)
    proba = np.exp(-((np.arange(5)[None, :] - centre[:, None]) ** 2))
    proba /= proba.sum(axis=1, keepdims=True)
    names = [f"KL{k}" for k in range(5)]
    rep = ordinal_report(y, proba, class_names=names, groups=np.arange(n) // 2, n_resamples=200)
    _assert_plain_json(rep)
    _assert_cis_bracket_estimates(rep)
    pred = proba.argmax(axis=1)
    assert rep["task"] == "ordinal"
    assert rep["qwk"]["estimate"] == pytest.approx(skm.cohen_kappa_score(y, pred, weights="quadratic"))
    assert rep["linear_kappa"]["estimate"] == pytest.approx(skm.cohen_kappa_score(y, pred, weights="linear"))
    assert rep["mae_grades"]["estimate"] == pytest.approx(np.mean(np.abs(y - pred)))
    assert rep["within_one_accuracy"]["estimate"] == pytest.approx(np.mean(np.abs(y - pred) <= 1))
    assert rep["qwk"]["low"] < rep["qwk"]["estimate"] < rep["qwk"]["high"]
    assert [row["cut"] for row in rep["at_least"]] == [">= KL1", ">= KL2", ">= KL3", ">= KL4"]
    kl2 = rep["at_least"][1]
    assert kl2["auc"]["estimate"] == pytest.approx(skm.roc_auc_score(y >= 2, proba[:, 2:].sum(axis=1)))
    assert kl2["sensitivity"]["estimate"] == pytest.approx(skm.recall_score(y >= 2, pred >= 2))
    assert "per_class" in rep and "macro_auc" in rep


def test_regression_report() -> None:
    rng = np.random.default_rng(2)
    y = rng.uniform(20, 200, 150)
    p = y + 2 + rng.normal(scale=10, size=150)
    rep = regression_report(y, p, groups=np.arange(150) // 3, n_resamples=300)
    _assert_plain_json(rep)
    _assert_cis_bracket_estimates(rep)
    assert rep["mae"]["estimate"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert rep["rmse"]["estimate"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert rep["r2"]["estimate"] == pytest.approx(skm.r2_score(y, p))
    assert rep["r"]["estimate"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    ba = bland_altman(y, p)
    for key in ("mean_difference", "sd", "loa_low", "loa_high"):
        assert rep["bland_altman"][key]["estimate"] == pytest.approx(ba[key])
    assert rep["bootstrap"]["n_units"] == 50


def test_report_input_errors() -> None:
    y, proba, _ = _multiclass_data(3, n=30, c=3)
    with pytest.raises(MetricInputError, match="class_names has 2 names"):
        multiclass_report(y, proba, class_names=["a", "b"], n_resamples=10)
    with pytest.raises(MetricInputError, match="lengths"):
        binary_report([0, 1, 1], [0.2, 0.3], threshold=0.5, n_resamples=10)
    with pytest.raises(MetricInputError, match="missing patient id"):
        regression_report([1.0, 2.0], [1.0, 2.5], groups=[None, "p1"], n_resamples=10)
