"""Report adapter of ``segment``: masks per pixel, judged by Dice; the dataset card counts masks, not files."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from osteon.data.boxes import json_list
from osteon.errors import DatasetFormatError
from osteon.metrics.segmentation import nanmean_score
from osteon.report.kinds.base import (
    REPORT_KINDS,
    Bootstrap,
    GalleryCases,
    PairedTest,
    ReportKind,
    bootstrap_row,
    count_row,
)
from osteon.report.tables import fmt

if TYPE_CHECKING:
    from osteon.engine.rundir import RunDir
    from osteon.report.rundata import RunData

#: Mask files read to tell empty (all background) from non-empty ones; above it the card only counts files.
MAX_MASKS_READ = 2000


@REPORT_KINDS.register("segment")
class SegmentKind(ReportKind):
    """Segmentation: per-image Dice; polygons or label-map files as the reference."""

    name: ClassVar[str] = "segment"
    monitor_name: ClassVar[str] = "mean Dice"

    def label_caption(self) -> str:
        return "Images per split and reference masks"

    def label_rows(self, data: RunData, values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
        """Polygons: annotated images with and without polygons, polygons per class. Label maps: images with a
        mask file, without one (all background), and masks that are empty or unreadable."""
        if _is_polygons(data, values):
            return _polygon_rows(values, split, order)
        return _mask_rows(data, values, split, order)

    def subgroup_header(self, data: RunData) -> list[str]:
        return ["n", "mean Dice (95% CI)"]

    def subgroup_cells(self, data: RunData, key: str, part: pd.DataFrame, boot: Bootstrap) -> list[str]:
        dice = mean_dice(part)
        values = dice.dropna().to_numpy(float) if dice is not None else np.zeros(0)
        return [fmt(len(part)), boot.by_image(np.mean, values) if len(values) else "—"]  # per image: no patients

    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        """The lowest and highest Dice."""
        dice = mean_dice(frame)
        if dice is None:
            return [], None
        ranked = frame.assign(_s=dice, _label="mean Dice").dropna(subset=["_s"]).sort_values("_s")
        return [
            ("Lowest Dice", "worst overlap with the reference mask", ranked.head(per_group)),
            ("Highest Dice", "best overlap with the reference mask", ranked.tail(per_group).iloc[::-1]),
        ], None

    def paired_rows(
        self, a: RunData, b: RunData, key: str, left: pd.DataFrame, right: pd.DataFrame, boot: PairedTest
    ) -> list[list[str]]:
        """Per-image Dice (all images, empty-mask policy; and the images whose reference has foreground) and IoU,
        each averaged over the foreground classes in original pixels: paired bootstrap of the mean over images."""
        y = np.zeros(len(left))
        foreground = _has_foreground(left)
        rows = []
        for name, metric, only_foreground in (
            ("Dice", "dice", False),
            ("Dice, images with foreground", "dice", True),
            ("IoU", "iou", False),
        ):
            va, vb = class_mean(left, metric), class_mean(right, metric)
            if va is None or vb is None or (only_foreground and foreground is None):
                continue
            pa, pb = va.to_numpy(float), vb.to_numpy(float)
            if only_foreground:
                pa, pb = np.where(foreground, pa, np.nan), np.where(foreground, pb, np.nan)
            rows.append(bootstrap_row(name, _mean_over_images, y, pa, pb, boot))
        return rows

    def write_figures(self, run: RunDir, key: str, frame: pd.DataFrame, result: dict[str, Any]) -> list[Path]:
        """``<key>_overlays.png``: predicted masks filled, reference outlined (when the masks were saved)."""
        from osteon.report.overlays import overlay_figure

        if "mask_file" not in frame or frame["mask_file"].isna().all():
            return []
        title = f"{key}: prediction (filled) vs truth (outline)"
        return [overlay_figure(frame, run.figures / f"{key}_overlays.png", title=title)]


def mean_dice(frame: pd.DataFrame) -> pd.Series | None:
    """Per-image Dice averaged over the foreground classes (``dice_<class>`` columns), or ``None``."""
    return class_mean(frame, "dice")


def class_mean(frame: pd.DataFrame, metric: str) -> pd.Series | None:
    """Per-image ``metric`` (``dice``, ``iou``) in original pixels averaged over the foreground classes
    (``<metric>_<class>`` columns; the resized-grid ``<metric>_grid_<class>`` ones left out), or ``None``."""
    columns = [c for c in frame.columns if str(c).startswith(f"{metric}_") and not str(c).startswith(f"{metric}_grid_")]
    if not columns:
        return None
    return frame[columns].apply(pd.to_numeric, errors="coerce").mean(axis=1)


def _has_foreground(frame: pd.DataFrame) -> np.ndarray | None:
    """Per image: does the reference mask of any foreground class have a pixel (``truth_area_px_<class>``)?"""
    columns = [c for c in frame.columns if str(c).startswith("truth_area_px_")]
    if not columns:
        return None
    return (frame[columns].apply(pd.to_numeric, errors="coerce").fillna(0) > 0).any(axis=1).to_numpy()


def _mean_over_images(y: np.ndarray, values: np.ndarray) -> float:
    """The mean of the defined per-image values (``y`` is unused: paired tests pass the reference first)."""
    return nanmean_score(values)


def _is_polygons(data: RunData, values: pd.Series) -> bool:
    source = data.task_state.get("extra", {}).get("source")
    if source:
        return str(source) == "polygons"
    given = values.dropna()
    return bool(len(given)) and str(given.iloc[0]).lstrip().startswith("[")


def _polygon_rows(values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
    parsed = [_polygons(v) for v in values]
    annotated = pd.Series([p is not None for p in parsed], index=values.index)
    with_shapes = pd.Series([bool(p) for p in parsed], index=values.index)
    labels = [[str(s.get("label", "")) if isinstance(s, dict) else "" for s in p or []] for p in parsed]
    rows = [
        count_row("images with polygons", with_shapes, split, order),
        count_row("images annotated empty ([]: all background)", annotated & ~with_shapes, split, order),
        count_row("images not annotated", ~annotated, split, order),
    ]
    for name in sorted({n for names in labels for n in names}):
        count = pd.Series([names.count(name) for names in labels], index=values.index)
        rows.append([f"polygons of {name}", *[fmt(int(count[split == s].sum())) for s in order], fmt(int(count.sum()))])
    return rows


def _polygons(value: object) -> list[Any] | None:
    """A polygons cell: ``None`` when not annotated (NA or empty), ``[]`` when malformed or empty."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
        return None
    try:
        return json_list(value, column="polygons")
    except DatasetFormatError:
        return []


def _mask_rows(data: RunData, values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
    given = values.notna() & (values.astype("string").str.strip() != "")
    rows = [
        count_row("images with a mask file", given, split, order),
        count_row("images without a mask file (all background)", ~given, split, order),
    ]
    paths = [data.manifest.resolve(str(v)) for v in values[given]]
    if not paths or len(paths) > MAX_MASKS_READ:
        return rows
    with ThreadPoolExecutor(max_workers=2) as pool:
        state = list(pool.map(_mask_state, paths))
    status = pd.Series("", index=values.index)
    status[given] = state
    rows.append(count_row("mask files that are empty (all background)", status == "empty", split, order))
    if (status == "unreadable").any():
        rows.append(count_row("mask files that cannot be read", status == "unreadable", split, order))
    return rows


def _mask_state(path: Path) -> str:
    from osteon.data.masks import read_label_map

    try:
        return "present" if (read_label_map(path) != 0).any() else "empty"
    except Exception:  # the data checks report unreadable masks; the card only counts them
        return "unreadable"
