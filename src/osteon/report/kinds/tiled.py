"""Report adapter of ``tiled`` (full-resolution classification from a bag of tiles): classify's tables and figures.

The gallery draws CAMs on the model's letterboxed input, which a tiled model does not take, so this adapter selects
no gallery cases; ``osteon explain RUN IMAGE`` draws the stitched tile Grad-CAMs and the attention map at the original
resolution (:mod:`osteon.explain.tiles`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pandas as pd

from osteon.report.kinds.base import REPORT_KINDS, GalleryCases
from osteon.report.kinds.labels import LabelKind

if TYPE_CHECKING:
    from osteon.report.rundata import RunData


@REPORT_KINDS.register("tiled")
class TiledKind(LabelKind):
    """Tiled classification: AUC (binary: with the operating point), accuracy; one row per image."""

    name: ClassVar[str] = "tiled"
    monitor_name: ClassVar[str] = "AUC"

    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        return [], None
