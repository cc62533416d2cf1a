"""Paired comparison of two runs on the same test cases: DeLong for AUC, paired bootstrap for the rest."""

from __future__ import annotations

import warnings

import pandas as pd

from osteon.errors import ConfigError
from osteon.report.kinds.base import PairedTest
from osteon.report.rundata import RunData, usable
from osteon.report.tables import Table


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

    The task's report adapter chooses the tests (:meth:`~osteon.report.kinds.ReportKind.paired_rows`): binary
    classification DeLong's test for AUC and a paired bootstrap (by patient when ids exist) of sensitivity,
    specificity and accuracy, each run at its own operating point; multiclass/grading a paired bootstrap of
    accuracy, macro AUC (and quadratic kappa, grade MAE); regression of MAE and RMSE; detection of mAP@0.5,
    mAP@0.5:0.95 and FROC mean sensitivity, with the ratio of the two runs' values beside each difference;
    segmentation of the mean per-image Dice (all images, and those whose reference has foreground) and IoU.
    p-values are two-sided and not adjusted for multiple comparisons.
    """
    left, right = matched_cases(a, b, key)
    groups = left["patient_id"].astype(str).to_numpy() if _has_ids(left) else None
    boot = PairedTest(groups, n_resamples, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = a.kind.paired_rows(a, b, key, left, right, boot)
    note = (
        f"{len(left)} cases matched by image path; "
        f"bootstrap by {'patient' if groups is not None else 'image'}, {n_resamples} resamples; "
        "two-sided p-values, not adjusted for multiple comparisons."
    )
    if not rows:
        note = f"No paired test is defined for task {a.task!r} yet. " + note
    header = ["metric", a.name, b.name, "difference (95% CI)", "test", "p"]
    return Table(f"{a.name} vs {b.name} on the {key} cases", header, rows, note=note)


def _has_ids(frame: pd.DataFrame) -> bool:
    return "patient_id" in frame and bool(frame["patient_id"].notna().all()) and len(frame) > 0
