"""Report adapter of ``keypoints``: landmarks judged by radial error; measurements by Bland–Altman."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from osteon.data.keypoints import parse_keypoints
from osteon.report.kinds.base import REPORT_KINDS, Bootstrap, GalleryCases, ReportKind, count_row, numbers
from osteon.report.tables import fmt

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from osteon.engine.rundir import RunDir
    from osteon.report.rundata import RunData


def _mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


@REPORT_KINDS.register("keypoints")
class KeypointsKind(ReportKind):
    """Landmarks: the reference is a set of named points per image."""

    name: ClassVar[str] = "keypoints"
    monitor_name: ClassVar[str] = "MRE px"
    monitor_direction: ClassVar[str] = "min"

    def label_caption(self) -> str:
        return "Images per split and annotated landmarks"

    def label_rows(self, data: RunData, values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
        """Annotated images, then how many images have each landmark."""
        parsed = [parse_keypoints(v) for v in values]
        rows = [
            count_row("annotated images", pd.Series([p is not None for p in parsed], index=values.index), split, order)
        ]
        for name in data.task_state.get("class_names", []):
            has = pd.Series([bool(p) and p.get(name) is not None for p in parsed], index=values.index)
            rows.append(count_row(f"with {name}", has, split, order))
        return rows

    def subgroup_header(self, data: RunData) -> list[str]:
        return ["n", "mean radial error px (95% CI)"]

    def subgroup_cells(self, data: RunData, key: str, part: pd.DataFrame, boot: Bootstrap) -> list[str]:
        if "radial_error_px" not in part or not len(part):
            return [fmt(len(part)), "—"]
        return [fmt(len(part)), boot.by_patient(_mean, numbers(part["radial_error_px"]))]

    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        if "radial_error_px" not in frame:
            return [], None
        ranked = frame.assign(_s=numbers(frame["radial_error_px"]), _label="MRE px").dropna(subset=["_s"])
        ranked = ranked.sort_values("_s", ascending=False)
        return [
            ("Largest errors", "largest mean radial error", ranked.head(per_group)),
            ("Smallest errors", "smallest mean radial error", ranked.tail(per_group).iloc[::-1]),
        ], None

    def result_figures(self, data: RunData, key: str, rows: pd.DataFrame) -> list[tuple[str, plt.Figure, str]]:
        return [(f"Bland–Altman — {m}", fig, name) for m, fig, name in _bland_altman_figures(rows, key)]

    def write_figures(self, run: RunDir, key: str, frame: pd.DataFrame, result: dict[str, Any]) -> list[Path]:
        from osteon.report.figures import save_figure
        from osteon.report.landmark_overlays import landmark_figure

        paths = [save_figure(fig, run.figures / name) for _, fig, name in _bland_altman_figures(frame, key)]
        if "truth" in frame and frame["truth"].notna().any():
            paths.append(landmark_figure(frame, run.figures / f"{key}_landmarks.png", title=f"{key}: ○ truth × model"))
        return paths


def _bland_altman_figures(rows: pd.DataFrame, key: str) -> list[tuple[str, Any, str]]:
    from osteon.report.figures import bland_altman_figure

    out = []
    for column in rows.columns:
        name = str(column)
        if not name.endswith("_reference") or name.removesuffix("_reference") not in rows:
            continue
        measure = name.removesuffix("_reference")
        y, p = numbers(rows[name]), numbers(rows[measure])
        keep = np.isfinite(y) & np.isfinite(p)
        if keep.sum() >= 3:
            figure = bland_altman_figure(y[keep], p[keep], title=f"Bland–Altman — {measure} ({key})")
            out.append((measure, figure, f"{key}_{measure}_bland_altman.png"))
    return out
