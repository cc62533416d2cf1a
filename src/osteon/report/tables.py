"""Tables for the report, and the generic rendering of a metrics dict (any task) as tables.

Every evaluation in ``metrics.json`` is a nested dict whose leaves are numbers, strings, intervals
``{estimate, low, high, n_valid}``, lists of row dicts (per class, per cut, per threshold) or matrices.
:func:`metric_tables` turns any such dict into tables without knowing the task, so segmentation
(Dice, Hausdorff) and detection (mAP, FROC) results render like classification ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Keys that are plotted or shown elsewhere, never as table cells.
SKIP_KEYS = frozenset(
    {"roc_curve", "curve", "bootstrap", "ci", "predictions_file", "class_names", "kind", "task", "split", "data"}
)
#: Keys describing the evaluated set rather than performance.
COUNT_KEYS = ("n_images", "n_patients", "n", "n_positive", "n_negative", "n_unreadable", "n_unlabelled")


@dataclass
class Table:
    """A table as the template renders it: every cell is already text (escaped by the template)."""

    caption: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    kind: str = ""  # css class: "matrix", "checklist", "warn" ...
    flags: list[str] = field(default_factory=list)  # per-row css class ("warn", "ok", "")

    def __post_init__(self) -> None:
        if not self.flags:
            self.flags = [""] * len(self.rows)


def is_interval(value: Any) -> bool:
    """True for ``{estimate, low, high, ...}`` dicts."""
    return isinstance(value, dict) and {"estimate", "low", "high"} <= set(value)


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: ints as ints, floats with ``digits`` decimals, missing/nan as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** (-digits)):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    if is_interval(value):
        return fmt_ci(value, digits)
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def fmt_ci(value: dict[str, Any], digits: int = 3) -> str:
    """``estimate (low–high)``; intervals that could not be computed show the estimate alone."""
    estimate, low, high = value.get("estimate"), value.get("low"), value.get("high")
    if low is None or high is None or not all(isinstance(v, int | float) and math.isfinite(v) for v in (low, high)):
        return fmt(estimate, digits)
    return f"{fmt(estimate, digits)} ({fmt(low, digits)}–{fmt(high, digits)})"


def fmt_p(p: float | None) -> str:
    """A p-value: ``<0.001`` below it, three decimals otherwise."""
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def label(key: str) -> str:
    """A readable row/column name from a dict key (``balanced_accuracy`` → ``balanced accuracy``)."""
    special = {"auc": "AUC", "ppv": "PPV", "npv": "NPV", "qwk": "quadratic weighted kappa", "f1": "F1"}
    return special.get(key, key.replace("_", " "))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, int | float | str | bool) or is_interval(value)


def _is_matrix(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(row, list) and row and all(isinstance(v, int | float) for v in row) for row in value)
        and len({len(row) for row in value}) == 1
    )


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, dict) for v in value)


def _is_number_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int | float) or v is None for v in value)


def metric_tables(
    result: dict[str, Any], *, title: str, class_names: Sequence[str] | None = None, skip: Sequence[str] = ()
) -> list[Table]:
    """Tables for one evaluation dict (one entry of ``metrics.json``), whatever the task.

    Scalars and intervals at one level form a two-column table; lists of row dicts become tables with
    one column per key; square matrices become matrix tables (``confusion_matrix``: rows = truth);
    dicts of dicts become one row per key. Long numeric lists (curves) are left to the figures.
    """
    names = list(class_names or result.get("class_names") or [])
    tables: list[Table] = []
    _walk({k: v for k, v in result.items() if k not in skip}, title, names, tables, top=True)
    return [t for t in tables if t.rows]


def _walk(value: dict[str, Any], title: str, names: list[str], tables: list[Table], *, top: bool = False) -> None:
    scalars = [
        [label(k), fmt(v)]
        for k, v in value.items()
        if k not in SKIP_KEYS and _is_scalar(v) and not (top and k in COUNT_KEYS) and k != "threshold"
    ]
    if scalars:
        tables.append(Table(title, ["metric", "estimate (95% CI)"], scalars))
    for key, item in value.items():
        if key in SKIP_KEYS or _is_scalar(item):
            continue
        name = f"{title} — {label(key)}"
        if key == "confusion_matrix" and _is_matrix(item):
            tables.append(matrix_table(item, names, caption=name))
        elif _is_matrix(item):
            tables.append(matrix_table(item, [], caption=name))
        elif _is_records(item):
            tables.append(records_table(item, caption=name))
        elif isinstance(item, dict) and item and all(is_interval(v) for v in item.values()):
            tables.append(Table(name, ["", "estimate (95% CI)"], [[str(k), fmt(v)] for k, v in item.items()]))
        elif isinstance(item, dict) and item and all(isinstance(v, dict) for v in item.values()):
            if all(all(_is_scalar(x) for k, x in v.items() if k not in SKIP_KEYS) for v in item.values()):
                tables.append(records_table([{"": k, **v} for k, v in item.items()], caption=name))
            else:
                for sub_key, sub in item.items():
                    _walk(sub, f"{name} — {sub_key}", names, tables)
        elif isinstance(item, dict):
            _walk(item, name, names, tables)
        elif _is_number_list(item) and len(item) <= 12:
            tables.append(Table(name, ["index", "value"], [[str(i), fmt(v)] for i, v in enumerate(item)]))


def records_table(records: list[dict[str, Any]], *, caption: str) -> Table:
    """One row per dict, one column per key (union, first-seen order); nested curves are skipped."""
    columns: list[str] = []
    for record in records:
        for key, value in record.items():
            if key not in columns and key not in SKIP_KEYS and _is_scalar(value):
                columns.append(key)
    rows = [[fmt(record.get(c)) for c in columns] for record in records]
    return Table(caption, [label(c) for c in columns], rows)


def matrix_table(matrix: list[list[float]], names: Sequence[str], *, caption: str) -> Table:
    """A matrix with row/column names (confusion matrices: rows = truth, columns = prediction)."""
    n_rows, n_cols = len(matrix), len(matrix[0])
    row_names = list(names) if len(names) == n_rows else [str(i) for i in range(n_rows)]
    col_names = list(names) if len(names) == n_cols else [str(j) for j in range(n_cols)]
    header = ["truth ↓ / predicted →", *col_names]
    rows = [[row_names[i], *[fmt(v) for v in matrix[i]]] for i in range(n_rows)]
    return Table(caption, header, rows, kind="matrix")


def two_by_two(matrix: list[list[int]], positive: str) -> Table:
    """The binary confusion matrix ``[[tn, fp], [fn, tp]]`` as the 2×2 table papers print."""
    (tn, fp), (fn, tp) = matrix
    rows = [
        [f"reference positive ({positive})", fmt(int(tp)), fmt(int(fn)), fmt(int(tp + fn))],
        ["reference negative", fmt(int(fp)), fmt(int(tn)), fmt(int(fp + tn))],
        ["total", fmt(int(tp + fp)), fmt(int(fn + tn)), fmt(int(tp + fp + fn + tn))],
    ]
    return Table("2×2 table at the operating point", ["", "model positive", "model negative", "total"], rows)


def key_value_table(caption: str, pairs: Sequence[tuple[str, Any]], *, note: str = "") -> Table:
    """A two-column table of named values."""
    return Table(caption, ["", ""], [[k, fmt(v)] for k, v in pairs], note=note, kind="kv")


def mean_sd(values: Any) -> str:
    """``mean ± sd`` (one decimal) of the numbers in ``values`` (text that is not a number is ignored)."""
    import pandas as pd

    numbers = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if numbers.empty:
        return "—"
    sd = float(numbers.std(ddof=1)) if len(numbers) > 1 else 0.0
    return f"{numbers.mean():.1f} ± {sd:.1f}"
