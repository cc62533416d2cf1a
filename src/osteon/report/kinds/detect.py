"""Report adapter of ``detect``: boxes per image, judged by mAP@0.5 and FROC; box overlays as figures.

Box JSON (the Manifest's ``boxes``, the predictions' ``truth`` and ``pred_boxes``) is read with
:func:`osteon.data.boxes.box_records`, the one parser of the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from osteon import metrics
from osteon.data.boxes import box_records, parse_box_column
from osteon.errors import DatasetFormatError
from osteon.report.kinds.base import REPORT_KINDS, Bootstrap, GalleryCases, PairedTest, ReportKind, count_row
from osteon.report.tables import fmt, fmt_p

if TYPE_CHECKING:
    from osteon.engine.rundir import RunDir
    from osteon.report.rundata import RunData


@REPORT_KINDS.register("detect")
class DetectKind(ReportKind):
    """Detection: findings as boxes; image-level views use the top box score."""

    name: ClassVar[str] = "detect"
    monitor_name: ClassVar[str] = "mAP@0.5"

    def label_caption(self) -> str:
        return "Images per split and reference boxes"

    def label_rows(self, data: RunData, values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
        """Images with and without boxes (and not annotated, malformed), then boxes per class."""
        parsed = [_records_or_none(v) for v in values]
        missing = values.isna() | (values.astype("string").str.strip() == "")
        malformed = pd.Series([p is None for p in parsed], index=values.index) & ~missing
        n_boxes = pd.Series([len(p or []) for p in parsed], index=values.index)
        rows = [
            count_row("images with boxes", n_boxes > 0, split, order),
            count_row("images without boxes ([])", ~missing & ~malformed & (n_boxes == 0), split, order),
        ]
        if missing.any():
            rows.append(count_row("images not annotated", missing, split, order))
        if malformed.any():
            rows.append(count_row("images with malformed box JSON", malformed, split, order))
        labels = [[r["label"] for r in p or []] for p in parsed]
        for name in sorted({n for names in labels for n in names}):
            count = pd.Series([names.count(name) for names in labels], index=values.index)
            rows.append(
                [f"boxes of {name}", *[fmt(int(count[split == s].sum())) for s in order], fmt(int(count.sum()))]
            )
        return rows

    def subgroup_header(self, data: RunData) -> list[str]:
        return ["n", "images with findings", "image-level AUC of the top box score (95% CI)"]

    def subgroup_cells(self, data: RunData, key: str, part: pd.DataFrame, boot: Bootstrap) -> list[str]:
        n = len(part)
        if "max_score" not in part:
            return [fmt(n), "—", "—"]
        y = part["truth"].map(has_boxes).to_numpy(int)
        score = pd.to_numeric(part["max_score"], errors="coerce").fillna(0.0).to_numpy(float)
        auc = boot.by_patient(metrics.roc_auc_score, y, score) if 0 < y.sum() < n else "—"
        return [fmt(n), fmt(int(y.sum())), auc]

    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        """Detected findings, missed findings and false alarms, ranked by the top box score."""
        if "max_score" not in frame:
            return [], None
        score = pd.to_numeric(frame["max_score"], errors="coerce").fillna(0.0)
        has_box = frame["truth"].map(has_boxes).astype(bool)
        ranked = frame.assign(_s=score, _label="highest box score")
        return [
            (
                "Detected findings",
                "reference boxes; highest box scores",
                ranked[has_box].sort_values("_s", ascending=False).head(per_group),
            ),
            (
                "Missed findings",
                "reference boxes; lowest box scores",
                ranked[has_box].sort_values("_s").head(per_group),
            ),
            (
                "False alarms",
                "no reference box; highest box scores",
                ranked[~has_box].sort_values("_s", ascending=False).head(per_group),
            ),
        ], None

    def gallery_text(self, value: object) -> str:
        records = _records_or_none(value)
        if records:
            return f"{len(records)} box(es)"
        return super().gallery_text(value)

    def gallery_prediction(self, row: pd.Series) -> object:
        return row.get("n_boxes", row.get("prediction", ""))

    def paired_rows(
        self, a: RunData, b: RunData, key: str, left: pd.DataFrame, right: pd.DataFrame, boot: PairedTest
    ) -> list[list[str]]:
        """mAP@0.5, mAP@0.5:0.95 and FROC mean sensitivity: difference (paired bootstrap) and ratio ``a / b``."""
        if "pred_boxes" not in left or "pred_boxes" not in right:
            return []
        class_index = {name: k for k, name in enumerate(self.class_names(a))}
        images = left["image"]
        result = metrics.paired_detection_test(
            parse_box_column(left["truth"], images, class_index=class_index),
            parse_box_column(left["pred_boxes"], images, class_index=class_index, scored=True),
            parse_box_column(right["pred_boxes"], right["image"], class_index=class_index, scored=True),
            n_classes=len(class_index),
            groups=boot.groups,
            n_resamples=boot.n_resamples,
            seed=boot.seed,
        )
        rows = []
        for stat, name in zip(metrics.DETECTION_STATISTICS, _STATISTIC_NAMES, strict=True):
            r = result[stat]
            test = f"paired bootstrap; ratio {_fmt_ratio(r['ratio'])}"
            rows.append([name, fmt(r["a"]), fmt(r["b"]), fmt(r["difference"]), test, fmt_p(r["p_value"])])
        return rows

    def write_figures(self, run: RunDir, key: str, frame: pd.DataFrame, result: dict[str, Any]) -> list[Path]:
        """True (green) and predicted (orange) boxes on a sample of images into ``figures/overlays_<key>/``."""
        from osteon.report.box_overlays import draw_box_overlays

        if "pred_boxes" not in frame or frame.empty:
            return []
        images = [str(_image_path(run, p)) for p in frame["image"].astype(str)]
        return draw_box_overlays(frame.assign(image=images), run.figure_dir(f"overlays_{key}"))


_STATISTIC_NAMES = ("mAP@0.5", "mAP@0.5:0.95", "FROC mean sensitivity")


def _fmt_ratio(ratio: dict[str, Any]) -> str:
    """``2.10× (1.30–5.00×)``; an unbounded end (the other run scored 0 on some resamples) as ``∞``."""
    estimate, low, high = (float(ratio[k]) for k in ("estimate", "low", "high"))
    if np.isnan(estimate):
        return "—"
    if np.isnan(low):
        return f"{_times(estimate)}×"
    return f"{_times(estimate)}× ({_times(low)}–{_times(high)}×)"


def _times(value: float) -> str:
    return "∞" if value == np.inf else f"{value:.2f}"


def has_boxes(value: object) -> bool:
    """True when a box cell holds at least one well-formed box."""
    return bool(_records_or_none(value))


def _records_or_none(value: object) -> list[dict[str, Any]] | None:
    """The box records of a cell, ``[]`` for an empty cell, ``None`` when the JSON is malformed."""
    try:
        return box_records(value)
    except DatasetFormatError:
        return None


def _image_path(run: RunDir, value: str) -> Path:
    """An image path of a predictions table: absolute, or relative to the working directory or the run."""
    path = Path(value)
    if not path.is_absolute() and not path.exists() and (run.path / path).exists():
        return run.path / path
    return path
