"""Report adapters of the label tasks: ``classify`` (binary, multiclass, multilabel) and ``grade`` (ordinal).

Binary runs (one positive class of two) get the clinical view: AUC with DeLong, sensitivity and specificity
at the operating point chosen on validation, true/false positives/negatives, readers' operating points.
Other label runs get accuracy (grades: quadratic kappa and grade error too).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from osteon import metrics
from osteon.report.kinds.base import REPORT_KINDS, Bootstrap, GalleryCases, PairedTest, ReportKind, bootstrap_row
from osteon.report.tables import Table, fmt, fmt_p

if TYPE_CHECKING:
    from osteon.report.readers import ReaderCalls
    from osteon.report.rundata import RunData


class LabelKind(ReportKind):
    """Shared behaviour of classification and grading reports."""

    categorical_truth: ClassVar[bool] = True
    #: Grades are ordered: kappa, grade error and the largest grade errors apply.
    ordinal: ClassVar[bool] = False

    # -- subgroups --------------------------------------------------------------------------------
    def subgroup_header(self, data: RunData) -> list[str]:
        if self.is_binary(data):
            return ["n", "positives", "prevalence", "AUC (95% CI)", "sensitivity (95% CI)", "specificity (95% CI)"]
        return ["n", "accuracy (95% CI)", *(["quadratic kappa (95% CI)"] if self.ordinal else [])]

    def subgroup_cells(self, data: RunData, key: str, part: pd.DataFrame, boot: Bootstrap) -> list[str]:
        n = len(part)
        if self.is_binary(data):
            positive = str(self.positive(data))
            y = (part["truth"].astype(str) == positive).to_numpy(int)
            score = part[f"prob_{positive}"].to_numpy(float)
            pred = (score >= float(data.metrics.get(key, {}).get("threshold", 0.5))).astype(int)
            return [
                fmt(n),
                fmt(int(y.sum())),
                fmt(float(y.mean()) if n else None),
                boot.by_patient(metrics.roc_auc_score, y, score) if 0 < y.sum() < n else "—",
                boot.by_patient(metrics.sensitivity_score, y, pred) if y.sum() else "—",
                boot.by_patient(metrics.specificity_score, y, pred) if y.sum() < n else "—",
            ]
        names = self.class_names(data)
        y, pred = _indices(part["truth"], names), _indices(part["prediction"], names)
        cells = [fmt(n), boot.by_patient(metrics.accuracy_score, y, pred) if n else "—"]
        if self.ordinal:
            qwk = partial(metrics.quadratic_weighted_kappa_score, n_grades=len(names))
            cells.append(boot.by_patient(qwk, y, pred) if n > 1 else "—")
        return cells

    # -- gallery ----------------------------------------------------------------------------------
    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        """Binary: the most confident true/false positives/negatives at the operating point. Otherwise the
        most confident correct predictions and errors (grades: the largest grade errors)."""
        names = self.class_names(data)
        if self.is_binary(data):
            positive = str(self.positive(data))
            score = frame[f"prob_{positive}"].astype(float)
            y = frame["truth"].astype(str) == positive
            called = score >= float(data.metrics.get(key, {}).get("threshold", 0.5))
            groups = [
                ("True positives", "reference positive, model positive (highest scores)", frame[y & called], False),
                ("False positives", "reference negative, model positive (highest scores)", frame[~y & called], False),
                ("False negatives", "reference positive, model negative (lowest scores)", frame[y & ~called], True),
                ("True negatives", "reference negative, model negative (lowest scores)", frame[~y & ~called], True),
            ]
            out = [
                (t, d, rows.assign(_s=score[rows.index]).sort_values("_s", ascending=asc).head(per_group))
                for t, d, rows, asc in groups
            ]
            return out, positive
        if not names:
            return [], None
        confidence = frame[[f"prob_{n}" for n in names]].max(axis=1)
        right = frame["truth"].astype(str) == frame["prediction"].astype(str)
        wrong = frame[~right].assign(_s=confidence[~right])
        if self.ordinal:
            index = {n: i for i, n in enumerate(names)}
            gap = (frame["truth"].astype(str).map(index) - frame["prediction"].astype(str).map(index)).abs()
            wrong = wrong.assign(_gap=gap[~right]).sort_values(["_gap", "_s"], ascending=False)
            title = ("Largest grade errors", "reference and predicted grade furthest apart (then most confident)")
        else:
            wrong = wrong.sort_values("_s", ascending=False)
            title = ("Confident errors", "wrong predictions with the highest probability")
        correct = frame[right].assign(_s=confidence[right]).sort_values("_s", ascending=False)
        return [
            (
                "Confident correct predictions",
                "right predictions with the highest probability",
                correct.head(per_group),
            ),
            (*title, wrong.head(per_group)),
        ], None

    # -- comparison -------------------------------------------------------------------------------
    def paired_rows(
        self, a: RunData, b: RunData, key: str, left: pd.DataFrame, right: pd.DataFrame, boot: PairedTest
    ) -> list[list[str]]:
        """Binary: DeLong for AUC and paired bootstrap of sensitivity, specificity and accuracy, each run at its
        own operating point. Multiclass/grading: accuracy, macro AUC (grades: kappa and grade error too)."""
        names = self.class_names(a)
        if self.is_binary(a):
            positive = str(self.positive(a))
            y = (left["truth"].astype(str) == positive).to_numpy(int)
            sa, sb = left[f"prob_{positive}"].to_numpy(float), right[f"prob_{positive}"].to_numpy(float)
            auc_a, auc_b, z, p = metrics.delong_test(y, sa, sb)
            rows = [["AUC", fmt(auc_a), fmt(auc_b), fmt(auc_a - auc_b), f"DeLong (z = {fmt(z, 2)})", fmt_p(p)]]
            pa, pb = (sa >= _threshold(a, key)).astype(int), (sb >= _threshold(b, key)).astype(int)
            for name, fn in (
                ("sensitivity", metrics.sensitivity_score),
                ("specificity", metrics.specificity_score),
                ("accuracy", metrics.accuracy_score),
            ):
                rows.append(bootstrap_row(name, fn, y, pa, pb, boot))
            return rows
        if a.task_state.get("multilabel"):
            return []
        y = _indices(left["truth"], names)
        pa, pb = _indices(left["prediction"], names), _indices(right["prediction"], names)
        rows = [bootstrap_row("accuracy", metrics.accuracy_score, y, pa, pb, boot)]
        proba_a = left[[f"prob_{n}" for n in names]].to_numpy(float)
        proba_b = right[[f"prob_{n}" for n in names]].to_numpy(float)
        rows.append(bootstrap_row("macro AUC", metrics.roc_auc_score, y, proba_a, proba_b, boot))
        if self.ordinal:
            qwk = partial(metrics.quadratic_weighted_kappa_score, n_grades=len(names))
            qwk.__name__ = "quadratic_weighted_kappa_score"  # type: ignore[attr-defined]
            rows.append(bootstrap_row("quadratic weighted kappa", qwk, y, pa, pb, boot))
            rows.append(bootstrap_row("mean absolute grade error", metrics.mean_absolute_grade_error, y, pa, pb, boot))
        return rows

    # -- readers ----------------------------------------------------------------------------------
    def reader_table(
        self, data: RunData, key: str, calls: ReaderCalls, rows: pd.DataFrame
    ) -> tuple[Table, list[dict[str, Any]]]:
        """Binary: each reader's sensitivity/specificity beside the model's; otherwise agreement with the reference."""
        from osteon.report.readers import reader_agreement, reader_points

        if self.is_binary(data):
            threshold = float(data.metrics[key].get("threshold", 0.5))
            return reader_points(calls, rows, positive=str(self.positive(data)), threshold=threshold)
        return reader_agreement(calls, rows, class_names=self.class_names(data), ordinal=self.ordinal), []


@REPORT_KINDS.register("classify")
class ClassifyKind(LabelKind):
    """Classification: AUC (binary: with the operating point), accuracy."""

    name: ClassVar[str] = "classify"
    monitor_name: ClassVar[str] = "AUC"


@REPORT_KINDS.register("grade")
class GradeKind(LabelKind):
    """Ordinal grading (e.g. Kellgren–Lawrence): quadratic weighted kappa, grade errors."""

    name: ClassVar[str] = "grade"
    monitor_name: ClassVar[str] = "quadratic weighted kappa"
    ordinal: ClassVar[bool] = True
    headline_keys: ClassVar[tuple[str, ...]] = ("qwk", "macro_auc")


def _indices(values: pd.Series, names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    return values.astype(str).map(index).to_numpy(int)


def _threshold(run: RunData, key: str) -> float:
    result = run.metrics.get(key, {})
    if isinstance(result.get("threshold"), int | float):
        return float(result["threshold"])
    point = run.run.read_json(run.run.operating_point)
    return float(point.get("threshold", 0.5))
