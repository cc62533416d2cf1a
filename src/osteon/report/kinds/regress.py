"""Report adapter of ``regress``: a number per image (bone age, joint-space width): MAE, Bland–Altman."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from osteon import metrics
from osteon.report.kinds.base import (
    REPORT_KINDS,
    Bootstrap,
    GalleryCases,
    PairedTest,
    ReportKind,
    bootstrap_row,
    numbers,
)
from osteon.report.tables import fmt, mean_sd

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from osteon.engine.rundir import RunDir
    from osteon.report.rundata import RunData


@REPORT_KINDS.register("regress")
class RegressKind(ReportKind):
    """Regression: the reference is a value; errors are differences."""

    name: ClassVar[str] = "regress"
    monitor_name: ClassVar[str] = "MAE"
    monitor_direction: ClassVar[str] = "min"
    numeric_truth: ClassVar[bool] = True

    def label_caption(self) -> str:
        return "Images per split and reference value"

    def label_rows(self, data: RunData, values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
        """Mean ± sd of the target per split."""
        target = data.task_state.get("target")
        values = pd.to_numeric(values, errors="coerce")
        return [[f"{target}: mean ± sd", *[mean_sd(values[split == s]) for s in order], mean_sd(values)]]

    def subgroup_header(self, data: RunData) -> list[str]:
        return ["n", "MAE (95% CI)"]

    def subgroup_cells(self, data: RunData, key: str, part: pd.DataFrame, boot: Bootstrap) -> list[str]:
        y, pred = numbers(part["truth"]), numbers(part["prediction"])
        return [fmt(len(part)), boot.by_patient(metrics.mean_absolute_error, y, pred) if len(part) else "—"]

    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        """The largest and smallest absolute errors."""
        error = (pd.to_numeric(frame["prediction"]) - pd.to_numeric(frame["truth"])).abs()
        ranked = frame.assign(_s=error).sort_values("_s", ascending=False)
        return [
            ("Largest errors", "largest |prediction − reference|", ranked.head(per_group)),
            ("Smallest errors", "smallest |prediction − reference|", ranked.tail(per_group).iloc[::-1]),
        ], None

    def paired_rows(
        self, a: RunData, b: RunData, key: str, left: pd.DataFrame, right: pd.DataFrame, boot: PairedTest
    ) -> list[list[str]]:
        """Paired bootstrap of MAE and RMSE."""
        y = pd.to_numeric(left["truth"]).to_numpy(float)
        pa = pd.to_numeric(left["prediction"]).to_numpy(float)
        pb = pd.to_numeric(right["prediction"]).to_numpy(float)
        return [
            bootstrap_row("MAE", metrics.mean_absolute_error, y, pa, pb, boot),
            bootstrap_row("RMSE", metrics.root_mean_squared_error, y, pa, pb, boot),
        ]

    def result_figures(self, data: RunData, key: str, rows: pd.DataFrame) -> list[tuple[str, plt.Figure, str]]:
        if "prediction" not in rows:
            return []
        return [("Bland–Altman plot", _bland_altman(rows, key), f"{key}_bland_altman.png")]

    def write_figures(self, run: RunDir, key: str, frame: pd.DataFrame, result: dict[str, Any]) -> list[Path]:
        from osteon.report.figures import save_figure

        if "prediction" not in frame:
            return []
        return [save_figure(_bland_altman(frame, key), run.figures / f"{key}_bland_altman.png")]


def _bland_altman(rows: pd.DataFrame, key: str) -> plt.Figure:
    from osteon.report.figures import bland_altman_figure

    return bland_altman_figure(numbers(rows["truth"]), numbers(rows["prediction"]), title=f"Bland–Altman — {key}")
