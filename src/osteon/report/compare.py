"""Paired comparison of two runs on the same test cases: DeLong for AUC, paired bootstrap for the rest."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from osteon import metrics
from osteon.errors import ConfigError
from osteon.report.rundata import RunData, usable
from osteon.report.tables import Table, fmt, fmt_p


def matched_cases(a: RunData, b: RunData, key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both runs' evaluated rows of ``key``, aligned on the same cases (matched by image path).

    Raises:
        ConfigError: a run lacks the evaluation, the tasks or classes differ, or the case sets differ.
    """
    for run in (a, b):
        if key not in run.predictions:
            raise ConfigError(
                f"{run.run.path} has no predictions for {key!r}. "
                f"Fix: run `osteon evaluate {run.run.path} --split {key}`."
            )
    if a.task != b.task or a.task_state.get("class_names") != b.task_state.get("class_names"):
        raise ConfigError(
            f"Cannot compare {a.name} ({a.task}, classes {a.task_state.get('class_names')}) with {b.name} "
            f"({b.task}, classes {b.task_state.get('class_names')}): runs must share task and classes."
        )
    if a.task_state.get("positive_class") != b.task_state.get("positive_class"):
        raise ConfigError(
            f"{a.name} and {b.name} have different positive classes "
            f"({a.task_state.get('positive_class')!r} vs {b.task_state.get('positive_class')!r})."
        )
    left, right = usable(a.predictions[key]), usable(b.predictions[key])
    for run, frame in ((a, left), (b, right)):
        duplicated = frame["case"][frame["case"].duplicated()]
        if len(duplicated):
            raise ConfigError(f"{run.name}: image {duplicated.iloc[0]} appears twice in the {key!r} predictions.")
    only_a = sorted(set(left["case"]) - set(right["case"]))
    only_b = sorted(set(right["case"]) - set(left["case"]))
    if only_a or only_b:
        raise ConfigError(
            f"{a.name} and {b.name} were not evaluated on the same cases for {key!r}: {len(only_a)} only in "
            f"{a.name} (e.g. {', '.join(only_a[:2]) or '-'}), {len(only_b)} only in {b.name} "
            f"(e.g. {', '.join(only_b[:2]) or '-'}). A paired comparison needs identical cases. "
            "Fix: evaluate both runs on the same split of the same dataset (same --split-file)."
        )
    right = right.set_index("case").loc[left["case"]].reset_index()
    if not (left["truth"].astype(str).to_numpy() == right["truth"].astype(str).to_numpy()).all():
        raise ConfigError(f"{a.name} and {b.name} disagree on the reference label of some cases for {key!r}.")
    return left, right


def compare_runs(a: RunData, b: RunData, *, key: str, n_resamples: int = 1000, seed: int = 0) -> Table:
    """A table of paired tests of run ``a`` against run ``b`` on the cases of evaluation ``key``.

    Binary tasks: DeLong's test for AUC; paired bootstrap (by patient when ids exist) for sensitivity,
    specificity and accuracy, each run at its own operating point. Multiclass/grading: paired bootstrap
    of accuracy, macro AUC (and quadratic kappa, grade MAE). Regression: paired bootstrap of MAE and RMSE.
    p-values are two-sided and not adjusted for multiple comparisons.
    """
    left, right = matched_cases(a, b, key)
    groups = left["patient_id"].astype(str).to_numpy() if _has_ids(left) else None
    boot = partial(metrics.paired_bootstrap_test, groups=groups, n_resamples=n_resamples, seed=seed)
    rows: list[list[str]] = []
    names = [str(n) for n in a.task_state.get("class_names", [])]
    positive = a.task_state.get("positive_class")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if a.task in ("classify", "grade") and positive is not None and len(names) == 2:
            y = (left["truth"].astype(str) == positive).to_numpy(int)
            sa, sb = left[f"prob_{positive}"].to_numpy(float), right[f"prob_{positive}"].to_numpy(float)
            auc_a, auc_b, z, p = metrics.delong_test(y, sa, sb)
            rows.append(["AUC", fmt(auc_a), fmt(auc_b), fmt(auc_a - auc_b), f"DeLong (z = {fmt(z, 2)})", fmt_p(p)])
            ta, tb = _threshold(a, key), _threshold(b, key)
            pa, pb = (sa >= ta).astype(int), (sb >= tb).astype(int)
            for name, fn in (
                ("sensitivity", metrics.sensitivity_score),
                ("specificity", metrics.specificity_score),
                ("accuracy", metrics.accuracy_score),
            ):
                rows.append(_bootstrap_row(name, fn, y, pa, pb, boot))
        elif a.task in ("classify", "grade") and not a.task_state.get("multilabel"):
            index = {n: i for i, n in enumerate(names)}
            y = left["truth"].astype(str).map(index).to_numpy(int)
            pa = left["prediction"].astype(str).map(index).to_numpy(int)
            pb = right["prediction"].astype(str).map(index).to_numpy(int)
            rows.append(_bootstrap_row("accuracy", metrics.accuracy_score, y, pa, pb, boot))
            proba_a = left[[f"prob_{n}" for n in names]].to_numpy(float)
            proba_b = right[[f"prob_{n}" for n in names]].to_numpy(float)
            rows.append(_bootstrap_row("macro AUC", metrics.roc_auc_score, y, proba_a, proba_b, boot))
            if a.task == "grade":
                qwk = partial(metrics.quadratic_weighted_kappa_score, n_grades=len(names))
                qwk.__name__ = "quadratic_weighted_kappa_score"  # type: ignore[attr-defined]
                rows.append(_bootstrap_row("quadratic weighted kappa", qwk, y, pa, pb, boot))
                rows.append(
                    _bootstrap_row("mean absolute grade error", metrics.mean_absolute_grade_error, y, pa, pb, boot)
                )
        elif a.task == "regress":
            y = pd.to_numeric(left["truth"]).to_numpy(float)
            pa = pd.to_numeric(left["prediction"]).to_numpy(float)
            pb = pd.to_numeric(right["prediction"]).to_numpy(float)
            rows.append(_bootstrap_row("MAE", metrics.mean_absolute_error, y, pa, pb, boot))
            rows.append(_bootstrap_row("RMSE", metrics.root_mean_squared_error, y, pa, pb, boot))
    note = (
        f"{len(left)} cases matched by image path; "
        f"bootstrap by {'patient' if groups is not None else 'image'}, {n_resamples} resamples; "
        "two-sided p-values, not adjusted for multiple comparisons."
    )
    if not rows:
        note = f"No paired test is defined for task {a.task!r} yet. " + note
    header = ["metric", a.name, b.name, "difference (95% CI)", "test", "p"]
    return Table(f"{a.name} vs {b.name} on the {key} cases", header, rows, note=note)


def _bootstrap_row(
    name: str, fn: Callable[..., float], y: np.ndarray, pa: np.ndarray, pb: np.ndarray, boot: Callable[..., Any]
) -> list[str]:
    diff, ci, p = boot(fn, y, pa, pb)
    interval = {"estimate": diff, "low": ci.low, "high": ci.high}
    return [name, fmt(float(fn(y, pa))), fmt(float(fn(y, pb))), fmt(interval), "paired bootstrap", fmt_p(p)]


def _threshold(run: RunData, key: str) -> float:
    result = run.metrics.get(key, {})
    if isinstance(result.get("threshold"), int | float):
        return float(result["threshold"])
    point = run.run.read_json(run.run.operating_point)
    return float(point.get("threshold", 0.5))


def _has_ids(frame: pd.DataFrame) -> bool:
    return "patient_id" in frame and bool(frame["patient_id"].notna().all()) and len(frame) > 0
