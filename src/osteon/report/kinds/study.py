"""Report adapters of the study models: ``multiview`` (one prediction per study from several views) and
``bilateral`` (one prediction per side, each compared with the mirrored other side).

The label is read, scored and evaluated by an inner image-level task (``state.json › task.extra.inner``:
classification or grading), so every table and figure comes from that task's adapter; these adapters add what
differs: the unit of analysis (studies, or sides of patients), stated in the results with the counts behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from osteon.report.kinds.base import REPORT_KINDS, Bootstrap, GalleryCases, PairedTest, ReportKind, adapter_for
from osteon.report.kinds.multitask import label
from osteon.report.tables import Table, fmt, is_interval, key_value_table

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from osteon.engine.rundir import RunDir
    from osteon.report.readers import ReaderCalls
    from osteon.report.rundata import RunData


def inner_kind(data: RunData) -> ReportKind:
    """The adapter of the image-level task inside the study model (classification or grading)."""
    return adapter_for(str(data.task_state.get("extra", {}).get("inner", "")))


class StudyKind(ReportKind):
    """Everything through the inner task's adapter; the unit of analysis stated in the results."""

    monitor_name: ClassVar[str] = "AUC"
    categorical_truth: ClassVar[bool] = True
    #: binary: AUC; grades: quadratic kappa; other labels: macro AUC.
    headline_keys: ClassVar[tuple[str, ...]] = ("auc", "qwk", "macro_auc")
    unit: ClassVar[str] = "images"
    #: one unit, for captions ("per study").
    one: ClassVar[str] = "image"

    def evaluated_unit(self, data: RunData) -> str:
        return self.unit

    def unit_rows(self, data: RunData, key: str, result: dict[str, Any]) -> list[tuple[str, Any]]:
        """Rows of the unit-of-analysis table."""
        return []

    def result_tables(self, data: RunData, key: str, result: dict[str, Any]) -> list[Table]:
        inner = inner_kind(data)
        ci = result.get("ci") or {}
        rows = [
            ("unit of analysis", f"{self.unit} (metrics.json › {key} › level = {result.get('level', '?')})"),
            *self.unit_rows(data, key, result),
            ("inner task", f"{inner.name or '?'} — target column {data.task_state.get('target')!r}"),
            ("CIs resampled by", ci.get("resampled_by", "?")),
        ]
        headline = [k for k, _ in self.headline_metrics(result)]
        metrics = headline + [k for k, v in result.items() if is_interval(v) and k not in headline]
        table = Table(
            f"{inner.name or 'inner'} metrics per {self.one} — {key}",
            ["metric", "estimate (95% CI)"],
            [[label(k) + (" (headline)" if k in headline else ""), fmt(result[k])] for k in metrics],
            note=f"Each row of predictions_{key}.csv is one of the {self.unit}; the intervals resample "
            f"{ci.get('resampled_by', '?')}s ({ci.get('n_resamples', '?')} resamples).",
        )
        return [key_value_table("Unit of analysis", rows), table]

    def outputs_text(self, data: RunData) -> str:
        return f"{len(data.task_state.get('class_names', [])) or 1} outputs per {self.one}"

    # -- everything else: the inner task's adapter ------------------------------------------------
    def label_caption(self) -> str:
        return "Images per split and reference label"

    def label_rows(self, data: RunData, values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
        return inner_kind(data).label_rows(data, values, split, order)

    def is_binary(self, data: RunData) -> bool:
        return inner_kind(data).is_binary(data)

    def subgroup_header(self, data: RunData) -> list[str]:
        return inner_kind(data).subgroup_header(data)

    def subgroup_cells(self, data: RunData, key: str, part: pd.DataFrame, boot: Bootstrap) -> list[str]:
        return inner_kind(data).subgroup_cells(data, key, part, boot)

    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        return inner_kind(data).gallery_cases(data, key, frame, per_group)

    def paired_rows(
        self, a: RunData, b: RunData, key: str, left: pd.DataFrame, right: pd.DataFrame, boot: PairedTest
    ) -> list[list[str]]:
        return inner_kind(a).paired_rows(a, b, key, left, right, boot)

    def reader_table(self, data: RunData, key: str, calls: ReaderCalls, rows: pd.DataFrame) -> Any:
        return inner_kind(data).reader_table(data, key, calls, rows)

    def result_figures(self, data: RunData, key: str, rows: pd.DataFrame) -> list[tuple[str, plt.Figure, str]]:
        return inner_kind(data).result_figures(data, key, rows)

    def write_figures(self, run: RunDir, key: str, frame: pd.DataFrame, result: dict[str, Any]) -> list[Path]:
        return []


@REPORT_KINDS.register("multiview")
class MultiViewKind(StudyKind):
    """Several views per study, one label and one prediction per study."""

    name: ClassVar[str] = "multiview"
    unit: ClassVar[str] = "studies"
    one: ClassVar[str] = "study"

    def unit_rows(self, data: RunData, key: str, result: dict[str, Any]) -> list[tuple[str, Any]]:
        extra = data.task_state.get("extra", {})
        rows: list[tuple[str, Any]] = [
            ("views (slots)", ", ".join(map(str, extra.get("views", []))) or "—"),
            ("fusion", f"{extra.get('fusion', 'mean')} of the views' features ("
                       + ("one backbone shared by the views)" if extra.get("shared_backbone", True) else
                          "one backbone per view)")),
            ("study label", "positive when any image is (binary), the highest grade (grades), else the first image's"),
        ]  # fmt: skip
        frame = data.predictions.get(key)
        if frame is not None and "n_images" in frame:
            n_images = pd.to_numeric(frame["n_images"], errors="coerce")
            rows.append(("images in the evaluated studies", int(n_images.sum())))
            if "views" in frame:
                n_views = frame["views"].astype(str).str.count(r"\|") + 1
                rows.append(("studies with every view", int((n_views == len(extra.get("views", []))).sum())))
        return rows


@REPORT_KINDS.register("bilateral")
class BilateralKind(StudyKind):
    """Both sides of a patient: one prediction per side (image), compared with the mirrored other side."""

    name: ClassVar[str] = "bilateral"
    unit: ClassVar[str] = "sides"
    one: ClassVar[str] = "side"

    def unit_rows(self, data: RunData, key: str, result: dict[str, Any]) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("side", "one image (one row of the predictions) per side, laterality L or R"),
            ("model", "Siamese: each side compared with the other, the right side mirrored onto the left"),
        ]
        frame = data.predictions.get(key)
        if frame is not None and "patient_id" in frame:
            sides = frame.groupby(frame["patient_id"].astype(str))["image"].count()
            rows += [("patients", len(sides)), ("patients with both sides", int((sides >= 2).sum()))]
        return rows
