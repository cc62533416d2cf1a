"""Report adapter of ``slices`` (2.5D classification of series): classify's tables and figures, per series.

The gallery of CAM thumbnails is drawn from 2D images, so this adapter selects no gallery cases; slice CAMs of a
series come from ``osteon explain RUN SERIES`` (the key slice with its Grad-CAM, :mod:`osteon.explain.volumes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pandas as pd

from osteon.report.kinds.base import REPORT_KINDS, GalleryCases
from osteon.report.kinds.labels import LabelKind

if TYPE_CHECKING:
    from osteon.report.rundata import RunData


@REPORT_KINDS.register("slices")
class SlicesKind(LabelKind):
    """2.5D classification: AUC (binary: with the operating point), accuracy; one row per series."""

    name: ClassVar[str] = "slices"
    monitor_name: ClassVar[str] = "AUC"

    def label_caption(self) -> str:
        return "Series per split and reference label"

    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        return [], None
