"""Human readers: their calls on the test cases, their operating points, and the model on the same cases.

The readers CSV has one row per (reader, case) with columns ``reader``, ``case`` and ``call``:

* ``case``: the image's path (absolute, or relative to the dataset folder), its file name, or its file
  name without extension (the image id), as long as it names one evaluated image;
* ``call``: ``1``/``0`` (also ``yes``/``no``, ``true``/``false``, ``positive``/``negative``) or a class name
  for binary tasks; a class or grade name for multiclass and grading tasks.

Optional columns make it a reader study (``osteon.report.mrmc``):

* ``condition``: how the case was read, e.g. ``unaided`` / ``aided`` (with the model's output shown); a reader
  reads each case once per condition;
* ``score``: the reader's confidence that the case is positive (a 1–5 rating or a 0–100 probability), for
  ROC curves and AUCs; without it a reader's AUC comes from the calls alone.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from osteon.errors import DatasetFormatError
from osteon.report.rundata import RunData, case_key
from osteon.report.tables import Table, fmt

REQUIRED = ("reader", "case", "call")
OPTIONAL = ("condition", "score")
POSITIVE_WORDS = {"1", "yes", "true", "positive", "pos"}
NEGATIVE_WORDS = {"0", "no", "false", "negative", "neg"}


@dataclass(frozen=True)
class ReaderCalls:
    """Parsed readers CSV: ``frame`` has ``reader``, ``case`` (the prediction's key), ``call``, ``row``."""

    path: Path
    frame: pd.DataFrame

    @property
    def readers(self) -> list[str]:
        """Reader labels: ``R1``, or ``R1 (aided)`` when the file has conditions (one label per reading)."""
        return list(dict.fromkeys(self.frame["label"]))

    @property
    def conditions(self) -> list[str]:
        """The reading conditions in order of appearance (``[""]`` without a ``condition`` column)."""
        return list(dict.fromkeys(self.frame["condition"]))


def case_lookup(predictions: pd.DataFrame, data: RunData) -> dict[str, list[str]]:
    """Every accepted spelling of each evaluated case → the cases it names (more than one: ambiguous)."""
    lookup: dict[str, list[str]] = defaultdict(list)
    for case in predictions["case"]:
        relative = data.dataset_relative(case).replace(os.sep, "/")
        for key in {case, relative, Path(case).name, Path(case).stem}:
            if case not in lookup[key]:
                lookup[key].append(case)
    return lookup


def read_readers(path: str | Path, predictions: pd.DataFrame, data: RunData) -> ReaderCalls:
    """Read and validate a readers CSV against the evaluated cases.

    Args:
        path: The CSV (columns ``reader``, ``case``, ``call``).
        predictions: The evaluated rows (with ``case`` and ``truth``).
        data: The run (class names, positive class, dataset folder).

    Raises:
        DatasetFormatError: missing file or column, or a bad row; the message names the row (and its line
            in the file), the value and what is allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path}: readers file not found. Fix: pass a CSV with columns reader, case, call.")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise DatasetFormatError(
            f"{path}: missing column(s) {missing}; found {list(table.columns)}. "
            "Fix: name the columns reader, case (image path or id) and call (0/1 or a class name)."
        )
    lookup = case_lookup(predictions, data)
    names = [str(n) for n in data.task_state.get("class_names", [])]
    positive = data.task_state.get("positive_class")
    binary = len(names) == 2 and positive is not None
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for i, record in table.iterrows():
        where = f"{path}: row {int(i) + 1} (line {int(i) + 2})"
        reader, case, call = (str(record[c]).strip() for c in REQUIRED)
        condition = str(record["condition"]).strip() if "condition" in table else ""
        if not reader:
            raise DatasetFormatError(f"{where}: the reader is empty. Fix: name the reader (e.g. R1).")
        matched = _match_case(case, lookup, where)
        value = _parse_call(call, names, positive, binary, where)
        score = _parse_score(str(record["score"]).strip(), where) if "score" in table else float("nan")
        if (reader, condition, matched) in seen:
            raise DatasetFormatError(
                f"{where}: reader {reader!r} already read case {case!r}"
                + (f" under condition {condition!r}" if condition else "")
                + f" in row {seen[(reader, condition, matched)]}. Fix: keep one call per reader and case"
                + (" and condition." if condition else " (add a condition column for aided/unaided readings).")
            )
        seen[(reader, condition, matched)] = int(i) + 1
        label = f"{reader} ({condition})" if condition else reader
        rows.append(
            {
                "reader": reader,
                "condition": condition,
                "label": label,
                "case": matched,
                "call": value,
                "score": score,
                "row": int(i) + 1,
            }
        )
    if not rows:
        raise DatasetFormatError(f"{path}: no rows. Fix: add one row per reader and case.")
    return ReaderCalls(path, pd.DataFrame(rows))


def _match_case(value: str, lookup: dict[str, list[str]], where: str) -> str:
    if not value:
        raise DatasetFormatError(f"{where}: the case is empty. Fix: give the image path or id.")
    spellings = [value.replace("\\", "/")]
    if os.path.isabs(value):
        spellings.insert(0, case_key(value))
    spellings += [Path(value).name, Path(value).stem]
    for spelling in spellings:
        found = lookup.get(spelling)
        if found and len(found) == 1:
            return found[0]
        if found:
            raise DatasetFormatError(
                f"{where}: case {value!r} names {len(found)} evaluated images ({', '.join(found[:3])}). "
                "Fix: give the path relative to the dataset folder."
            )
    examples = ", ".join(sorted(k for k in lookup if "/" not in k)[:3])
    raise DatasetFormatError(
        f"{where}: case {value!r} is not one of the evaluated images. Fix: use an image path or id of the "
        f"evaluated split (e.g. {examples})."
    )


def _parse_score(value: str, where: str) -> float:
    if not value:
        return float("nan")
    try:
        score = float(value)
    except ValueError:
        raise DatasetFormatError(
            f"{where}: score {value!r} is not a number. Fix: give the reader's confidence as a number "
            "(e.g. a 1-5 rating or 0-100), or leave the cell empty."
        ) from None
    if not np.isfinite(score):
        raise DatasetFormatError(f"{where}: score {value!r} is not finite. Fix: give a finite number or none.")
    return score


def _parse_call(value: str, names: list[str], positive: str | None, binary: bool, where: str) -> Any:
    if binary:
        lowered = value.lower()
        if value == positive or lowered in POSITIVE_WORDS:
            return 1
        if value in names or lowered in NEGATIVE_WORDS:
            return 0
        allowed = f"0/1, yes/no or a class name {names}"
    else:
        if value in names:
            return value
        allowed = f"one of the classes {names}"
    raise DatasetFormatError(f"{where}: call {value!r} is not allowed; use {allowed}.")


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion ``k / n`` (``nan`` bounds when ``n == 0``)."""
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def reader_points(
    calls: ReaderCalls, predictions: pd.DataFrame, *, positive: str, threshold: float
) -> tuple[Table, list[dict[str, Any]]]:
    """Binary tasks: each reader's sensitivity and specificity (Wilson 95% CI), and the model's on the same cases.

    Returns:
        The table, and one dict per reader for :func:`osteon.report.figures.roc_figure`.
    """
    truth = dict(zip(predictions["case"], (predictions["truth"].astype(str) == positive).astype(int), strict=True))
    score = dict(zip(predictions["case"], predictions[f"prob_{positive}"].astype(float), strict=True))
    rows: list[list[str]] = []
    points: list[dict[str, Any]] = []
    for reader in calls.readers:
        mine = calls.frame[calls.frame["label"] == reader]
        y = np.array([truth[c] for c in mine["case"]])
        call = mine["call"].to_numpy(int)
        model = np.array([score[c] >= threshold for c in mine["case"]], dtype=int)
        tp, fn = int(((call == 1) & (y == 1)).sum()), int(((call == 0) & (y == 1)).sum())
        tn, fp = int(((call == 0) & (y == 0)).sum()), int(((call == 1) & (y == 0)).sum())
        sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
        sens_ci, spec_ci = wilson(tp, tp + fn), wilson(tn, tn + fp)
        m_sens = _ratio(int(((model == 1) & (y == 1)).sum()), int((y == 1).sum()))
        m_spec = _ratio(int(((model == 0) & (y == 0)).sum()), int((y == 0).sum()))
        rows.append(
            [
                reader,
                fmt(len(mine)),
                fmt(int(y.sum())),
                _with_ci(sens, sens_ci),
                _with_ci(spec, spec_ci),
                fmt(m_sens),
                fmt(m_spec),
            ]
        )
        points.append(
            {
                "reader": reader,
                "sensitivity": sens,
                "specificity": spec,
                "sensitivity_ci": sens_ci,
                "specificity_ci": spec_ci,
            }
        )
    header = [
        "reader",
        "cases",
        "positives",
        "sensitivity (95% CI)",
        "specificity (95% CI)",
        "model sensitivity, same cases",
        "model specificity, same cases",
    ]
    note = "Reader intervals: Wilson score. Model: the operating point chosen on validation, on the reader's cases."
    return Table("Human readers and the model on the same cases", header, rows, note=note), [
        p for p in points if np.isfinite(float(p["sensitivity"])) and np.isfinite(float(p["specificity"]))
    ]


def reader_agreement(calls: ReaderCalls, predictions: pd.DataFrame, *, class_names: list[str], ordinal: bool) -> Table:
    """Multiclass/grading: each reader's accuracy (Wilson CI) and, for grades, quadratic kappa; the model's too."""
    from osteon.metrics import quadratic_weighted_kappa_score

    index = {n: i for i, n in enumerate(class_names)}
    truth = dict(zip(predictions["case"], predictions["truth"].astype(str), strict=True))
    predicted = dict(zip(predictions["case"], predictions["prediction"].astype(str), strict=True))
    rows = []
    for reader in calls.readers:
        mine = calls.frame[calls.frame["label"] == reader]
        y = np.array([index[truth[c]] for c in mine["case"]])
        call = np.array([index[v] for v in mine["call"]])
        model = np.array([index[predicted[c]] for c in mine["case"]])
        correct = int((call == y).sum())
        row = [
            reader,
            fmt(len(mine)),
            _with_ci(correct / len(y), wilson(correct, len(y))),
            fmt(float((model == y).mean())),
        ]
        if ordinal:
            k = len(class_names)
            row += [
                fmt(quadratic_weighted_kappa_score(y, call, n_grades=k)),
                fmt(quadratic_weighted_kappa_score(y, model, n_grades=k)),
            ]
        rows.append(row)
    header = ["reader", "cases", "accuracy (95% CI)", "model accuracy, same cases"]
    if ordinal:
        header += ["reader quadratic kappa", "model quadratic kappa, same cases"]
    return Table(
        "Human readers and the model on the same cases", header, rows, note="Accuracy intervals: Wilson score."
    )


def _ratio(k: int, n: int) -> float:
    return k / n if n else float("nan")


def _with_ci(value: float, ci: tuple[float, float]) -> str:
    return fmt({"estimate": value, "low": ci[0], "high": ci[1]})
