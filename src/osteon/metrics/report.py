"""High-level metric reports: one JSON-able dict per evaluation, every interval-able number with a CI.

Each builder computes point estimates with the public metric functions (scikit-learn underneath) and
bootstrap intervals from one set of resamples (by patient when ``groups`` is given, else by image;
percentile method; undefined resamples dropped). Intervals are dicts ``{estimate, low, high, n_valid}``.
All values are plain Python ``float``/``int``/``str``/``list``; ``nan`` marks an undefined value, so
``json.dumps`` works (it writes ``NaN``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from osteon.metrics._bootstrap import ConfidenceInterval, _group_codes, resample_distribution, summarise
from osteon.metrics._common import (
    MetricInputError,
    as_array,
    check_binary,
    check_finite,
    check_labels,
    check_lengths,
)
from osteon.metrics.calibration import _brier_batched, brier_score_loss, calibration_curve, expected_calibration_error
from osteon.metrics.classification import (
    binary_auc_batched,
    binary_metrics_at_threshold,
    binary_rates_batched,
    per_class_auc_batched,
    roc_auc_score,
    roc_curve,
)
from osteon.metrics.multiclass import (
    _accuracy_batched,
    _balanced_accuracy_batched,
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    per_class_metrics,
    per_class_rates_batched,
    per_class_roc_auc_score,
)
from osteon.metrics.ordinal import (
    _grade_error_batched,
    _within_batched,
    cumulative_rates_batched,
    kappa_batched,
    linear_weighted_kappa_score,
    mean_absolute_grade_error,
    per_grade_metrics,
    quadratic_weighted_kappa_score,
    within_one_accuracy_score,
)
from osteon.metrics.regression import (
    _mae_batched,
    _r2_batched,
    _rmse_batched,
    bland_altman,
    bland_altman_batched,
    mean_absolute_error,
    pearson_batched,
    pearson_r_score,
    r2_score,
    root_mean_squared_error,
)

__all__ = ["binary_report", "multiclass_report", "ordinal_report", "regression_report"]

_RATES = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "balanced_accuracy", "f1")
_CLASS_RATES = ("sensitivity", "specificity", "ppv", "npv")
StatFn = Callable[[np.ndarray], np.ndarray]


class _Bootstrap:
    """Resampling settings shared by all the intervals of one report."""

    def __init__(self, n_rows: int, groups: Any, n_resamples: int, confidence: float, seed: int | None) -> None:
        self.n_rows, self.groups, self.n_resamples = n_rows, groups, n_resamples
        self.confidence, self.seed = confidence, seed
        self.n_units = n_rows if groups is None else _group_codes(groups, n_rows)[1]

    def run(self, stat_fns: dict[str, StatFn]) -> dict[str, np.ndarray]:
        return resample_distribution(
            stat_fns, self.n_rows, groups=self.groups, n_resamples=self.n_resamples, seed=self.seed
        )

    def ci(self, estimate: float, values: np.ndarray, name: str) -> dict[str, float | int]:
        interval = summarise(estimate, values, confidence=self.confidence, method="percentile", name=name)
        return _ci_dict(interval)

    def meta(self) -> dict[str, Any]:
        return {
            "method": "percentile",
            "unit": "image" if self.groups is None else "patient",
            "n_units": int(self.n_units),
            "n_resamples": int(self.n_resamples),
            "confidence": float(self.confidence),
            "seed": self.seed,
        }


def _ci_dict(ci: ConfidenceInterval) -> dict[str, float | int]:
    return {"estimate": float(ci.estimate), "low": float(ci.low), "high": float(ci.high), "n_valid": int(ci.n_valid)}


def _floats(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def _check_class_names(class_names: Sequence[str], n_columns: int) -> list[str]:
    names = [str(c) for c in class_names]
    if len(names) != n_columns:
        raise MetricInputError(
            f"class_names has {len(names)} names but proba has {n_columns} columns; give one name per column."
        )
    return names


# -------------------------------------------------------------------------------------------- binary
def binary_report(
    y_true: Any,
    y_score: Any,
    *,
    threshold: float,
    groups: Any = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    max_roc_points: int = 200,
) -> dict[str, Any]:
    """Binary evaluation at a fixed operating point.

    Args:
        y_true: ``(N,)`` 0/1 labels.
        y_score: ``(N,)`` scores (probability of the positive class, or any monotone score).
        threshold: Operating point chosen on validation data (``y_score >= threshold`` is positive).
        groups: Optional ``(N,)`` patient ids; intervals then resample patients.
        n_resamples, confidence, seed: Bootstrap settings.
        max_roc_points: Maximum number of ROC points kept for plotting.

    Returns:
        ``{task, n, n_positive, n_negative, threshold, auc, sensitivity, specificity, ppv, npv,
        accuracy, balanced_accuracy, f1, confusion_matrix ([[tn, fp], [fn, tp]], rows = true),
        roc_curve {fpr, tpr, thresholds}, calibration (only when scores are in [0, 1]), bootstrap}``.
    """
    y = check_binary("y_true", y_true)
    s = check_finite("y_score", as_array("y_score", y_score))
    check_lengths(y_true=y, y_score=s)
    threshold = float(threshold)
    boot = _Bootstrap(len(y), groups, n_resamples, confidence, seed)
    pred = (s >= threshold).astype(np.int64)
    at = binary_metrics_at_threshold(y, s, threshold)
    stats: dict[str, StatFn] = {
        "auc": lambda w: binary_auc_batched(w, y, s),
        "rates": lambda w: np.stack([binary_rates_batched(w, y, pred)[k] for k in _RATES], axis=1),
    }
    is_probability = bool(len(s)) and float(s.min()) >= 0.0 and float(s.max()) <= 1.0
    if is_probability:
        stats["brier"] = lambda w: _brier_batched(w, y, s)
    dist = boot.run(stats)
    fpr, tpr, thr = roc_curve(y, s, max_points=max_roc_points)
    report: dict[str, Any] = {
        "task": "binary",
        "n": len(y),
        "n_positive": int(y.sum()),
        "n_negative": int(len(y) - y.sum()),
        "threshold": threshold,
        "auc": boot.ci(roc_auc_score(y, s), dist["auc"], "AUC"),
    }
    for i, name in enumerate(_RATES):
        report[name] = boot.ci(float(at[name]), dist["rates"][:, i], name)
    report["confusion_matrix"] = [[at["tn"], at["fp"]], [at["fn"], at["tp"]]]
    report["roc_curve"] = {"fpr": _floats(fpr), "tpr": _floats(tpr), "thresholds": _floats(thr)}
    if is_probability:
        prob_true, prob_pred = calibration_curve(y, s, n_bins=10)
        report["calibration"] = {
            "brier": boot.ci(brier_score_loss(y, s), dist["brier"], "Brier score"),
            "ece": expected_calibration_error(y, s, n_bins=10),
            "curve": {"prob_true": _floats(prob_true), "prob_pred": _floats(prob_pred)},
        }
    report["bootstrap"] = boot.meta()
    return report


# ---------------------------------------------------------------------------------------- multiclass
def _multiclass_inputs(
    y_true: Any, proba: Any, class_names: Sequence[str], y_pred: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    prob = check_finite("proba", as_array("proba", proba, ndim=2))
    names = _check_class_names(class_names, prob.shape[1])
    y = check_labels("y_true", y_true, prob.shape[1])
    check_lengths(y_true=y, proba=prob)
    pred = prob.argmax(axis=1) if y_pred is None else check_labels("y_pred", y_pred, prob.shape[1])
    check_lengths(y_true=y, y_pred=pred)
    return y, prob, pred, names


def _multiclass_section(
    y: np.ndarray, prob: np.ndarray, pred: np.ndarray, names: list[str], boot: _Bootstrap
) -> dict[str, Any]:
    c = prob.shape[1]
    dist = boot.run(
        {
            "accuracy": lambda w: _accuracy_batched(w, y, pred),
            "balanced_accuracy": lambda w: _balanced_accuracy_batched(w, y, pred, n_classes=c),
            "class_auc": lambda w: per_class_auc_batched(w, y, prob),
            "class_rates": lambda w: np.stack(
                [per_class_rates_batched(w, y, pred, c)[k] for k in _CLASS_RATES], axis=2
            ),
        }
    )
    class_auc = per_class_roc_auc_score(y, prob)
    rates = per_class_metrics(y, pred, n_classes=c)
    per_class = []
    for j, name in enumerate(names):
        row: dict[str, Any] = {"class": name, "index": j, "support": int(rates["support"][j])}
        for i, key in enumerate(_CLASS_RATES):
            row[key] = boot.ci(float(rates[key][j]), dist["class_rates"][:, j, i], f"{key} of class {name!r}")
        row["auc"] = boot.ci(float(class_auc[j]), dist["class_auc"][:, j], f"AUC of class {name!r}")
        per_class.append(row)
    return {
        "n": len(y),
        "class_names": names,
        "accuracy": boot.ci(accuracy_score(y, pred), dist["accuracy"], "accuracy"),
        "balanced_accuracy": boot.ci(
            balanced_accuracy_score(y, pred, n_classes=c), dist["balanced_accuracy"], "balanced accuracy"
        ),
        "macro_auc": boot.ci(roc_auc_score(y, prob), dist["class_auc"].mean(axis=1), "macro AUC"),
        "confusion_matrix": confusion_matrix(y, pred, n_classes=c).tolist(),
        "per_class": per_class,
    }


def multiclass_report(
    y_true: Any,
    proba: Any,
    *,
    class_names: Sequence[str],
    groups: Any = None,
    y_pred: Any = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Multiclass evaluation: accuracy, balanced accuracy, macro AUC, confusion matrix, per-class rates.

    Args:
        y_true: ``(N,)`` class indices ``0..C-1``.
        proba: ``(N, C)`` class probabilities (or scores); column j is ``class_names[j]``.
        class_names: C names.
        groups: Optional ``(N,)`` patient ids; intervals then resample patients.
        y_pred: Optional ``(N,)`` predicted indices (default ``proba.argmax(axis=1)``).
        n_resamples, confidence, seed: Bootstrap settings.

    Returns:
        ``{task, n, class_names, accuracy, balanced_accuracy, macro_auc, confusion_matrix (rows =
        true, columns = predicted), per_class [{class, index, support, sensitivity, specificity,
        ppv, npv, auc}], bootstrap}``. Balanced accuracy and macro AUC are ``nan`` when a class has
        no sample.
    """
    y, prob, pred, names = _multiclass_inputs(y_true, proba, class_names, y_pred)
    boot = _Bootstrap(len(y), groups, n_resamples, confidence, seed)
    return {"task": "multiclass", **_multiclass_section(y, prob, pred, names, boot), "bootstrap": boot.meta()}


def ordinal_report(
    y_true: Any,
    proba: Any,
    *,
    class_names: Sequence[str],
    groups: Any = None,
    y_pred: Any = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Ordinal (graded) evaluation: the multiclass report plus kappa, grade error and per-grade cuts.

    Args:
        y_true: ``(N,)`` grades ``0..K-1`` in clinical order.
        proba: ``(N, K)`` grade probabilities; column k is ``class_names[k]``.
        class_names: K grade names in order (e.g. ``["KL0", ..., "KL4"]``).
        groups: Optional ``(N,)`` patient ids; intervals then resample patients.
        y_pred: Optional ``(N,)`` predicted grades (default ``proba.argmax(axis=1)``; pass your own
            decoding, e.g. from cumulative logits).
        n_resamples, confidence, seed: Bootstrap settings.

    Returns:
        Everything :func:`multiclass_report` returns (``task = "ordinal"``) plus ``qwk``,
        ``linear_kappa``, ``mae_grades``, ``within_one_accuracy`` (each with a CI) and ``at_least``:
        one row per cut k = 1..K-1 treating grade >= k as positive, with sensitivity, specificity
        and AUC (score = ``proba[:, k:].sum(axis=1)``), each with a CI.
    """
    y, prob, pred, names = _multiclass_inputs(y_true, proba, class_names, y_pred)
    k = prob.shape[1]
    boot = _Bootstrap(len(y), groups, n_resamples, confidence, seed)
    section = _multiclass_section(y, prob, pred, names, boot)
    cut_scores = [prob[:, j:].sum(axis=1) for j in range(1, k)]
    dist = boot.run(
        {
            "qwk": lambda w: kappa_batched(w, y, pred, kappa_weights="quadratic", n_grades=k),
            "lwk": lambda w: kappa_batched(w, y, pred, kappa_weights="linear", n_grades=k),
            "mae": lambda w: _grade_error_batched(w, y, pred),
            "within": lambda w: _within_batched(w, y, pred),
            "cut_rates": lambda w: np.stack(
                [cumulative_rates_batched(w, y, pred, k)[key] for key in ("sensitivity", "specificity")], axis=2
            ),
            "cut_auc": lambda w: np.stack(
                [binary_auc_batched(w, y >= j, cut_scores[j - 1]) for j in range(1, k)], axis=1
            ).reshape(w.shape[0], k - 1),
        }
    )
    table = per_grade_metrics(y, pred, n_grades=k)["at_least"]
    at_least = []
    for j in range(1, k):
        positives = y >= j
        auc = roc_auc_score(positives.astype(int), cut_scores[j - 1])
        at_least.append(
            {
                "cut": f">= {names[j]}",
                "k": j,
                "n_positive": int(positives.sum()),
                "sensitivity": boot.ci(
                    float(table["sensitivity"][j - 1]),
                    dist["cut_rates"][:, j - 1, 0],
                    f"sensitivity of grade >= {names[j]}",
                ),
                "specificity": boot.ci(
                    float(table["specificity"][j - 1]),
                    dist["cut_rates"][:, j - 1, 1],
                    f"specificity of grade >= {names[j]}",
                ),
                "auc": boot.ci(auc, dist["cut_auc"][:, j - 1], f"AUC of grade >= {names[j]}"),
            }
        )
    return {
        "task": "ordinal",
        **section,
        "qwk": boot.ci(quadratic_weighted_kappa_score(y, pred, n_grades=k), dist["qwk"], "quadratic weighted kappa"),
        "linear_kappa": boot.ci(linear_weighted_kappa_score(y, pred, n_grades=k), dist["lwk"], "linear kappa"),
        "mae_grades": boot.ci(mean_absolute_grade_error(y, pred), dist["mae"], "mean absolute grade error"),
        "within_one_accuracy": boot.ci(within_one_accuracy_score(y, pred), dist["within"], "within-one accuracy"),
        "at_least": at_least,
        "bootstrap": boot.meta(),
    }


# ---------------------------------------------------------------------------------------- regression
def regression_report(
    y_true: Any,
    y_pred: Any,
    *,
    groups: Any = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Regression evaluation (e.g. bone age): MAE, RMSE, Pearson r, R² and Bland–Altman, each with a CI.

    Args:
        y_true: ``(N,)`` reference values.
        y_pred: ``(N,)`` predicted values, same unit.
        groups: Optional ``(N,)`` patient ids; intervals then resample patients.
        n_resamples, confidence, seed: Bootstrap settings.

    Returns:
        ``{task, n, mae, rmse, r, r2, bland_altman {mean_difference, sd, loa_low, loa_high},
        bootstrap}``; Bland–Altman differences are ``y_pred - y_true``.
    """
    y = check_finite("y_true", as_array("y_true", y_true))
    p = check_finite("y_pred", as_array("y_pred", y_pred))
    check_lengths(y_true=y, y_pred=p)
    boot = _Bootstrap(len(y), groups, n_resamples, confidence, seed)
    ba_keys = ("mean_difference", "sd", "loa_low", "loa_high")
    dist = boot.run(
        {
            "mae": lambda w: _mae_batched(w, y, p),
            "rmse": lambda w: _rmse_batched(w, y, p),
            "r": lambda w: pearson_batched(w, y, p),
            "r2": lambda w: _r2_batched(w, y, p),
            "ba": lambda w: np.stack([bland_altman_batched(w, y, p)[k] for k in ba_keys], axis=1),
        }
    )
    ba = bland_altman(y, p)
    return {
        "task": "regression",
        "n": len(y),
        "mae": boot.ci(mean_absolute_error(y, p), dist["mae"], "MAE"),
        "rmse": boot.ci(root_mean_squared_error(y, p), dist["rmse"], "RMSE"),
        "r": boot.ci(pearson_r_score(y, p), dist["r"], "Pearson r"),
        "r2": boot.ci(r2_score(y, p), dist["r2"], "R²"),
        "bland_altman": {k: boot.ci(ba[k], dist["ba"][:, i], f"Bland–Altman {k}") for i, k in enumerate(ba_keys)},
        "bootstrap": boot.meta(),
    }
