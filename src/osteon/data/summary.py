"""What is in a dataset: counts by split and label, annotations, covariate coverage, file formats."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from osteon.data.boxes import json_list
from osteon.data.manifest import SPLITS, Manifest

COVARIATES = ("age", "sex", "bmi", "body_part", "view", "laterality", "hardware", "study_id", "target")
NO_SPLIT = "(none)"
NO_LABEL = "(missing)"


def summarize(manifest: Manifest) -> dict[str, Any]:
    """A JSON-able description of a Manifest (reads no image files).

    Returns:
        A dict with keys

        * ``name``, ``root``: the dataset name and root folder.
        * ``images``: number of rows; ``patients``: distinct non-missing ``patient_id`` (``None`` if no column);
          ``images_without_patient``: rows without one.
        * ``splits``: ``{split: images}`` with ``"(none)"`` for rows without a split;
          ``patients_per_split``: ``{split: distinct patients}``.
        * ``labels``: ``{split: {label: images}}`` (``{}`` when there is no ``label`` column); multilabel
          values (``"a|b"``) are counted as written.
        * ``annotations``: ``boxes`` (total), ``images_with_boxes``, ``polygons``, ``images_with_polygons``,
          ``masks`` (rows with a mask path).
        * ``covariates``: ``{column: fraction of rows with a value}`` for the covariate columns present.
        * ``formats``: ``{extension: images}`` (lowercase, ``""`` for none; ``.nii.gz`` kept whole).
        * ``target``: ``{min, mean, max}`` of the numeric ``target`` column, when present.

    Example:
        >>> summarize(manifest)["images"]  # doctest: +SKIP
        974
    """
    frame = manifest.frame
    split = frame["split"].fillna(NO_SPLIT) if "split" in frame else pd.Series(NO_SPLIT, index=frame.index)
    order = [s for s in (*SPLITS, NO_SPLIT) if (split == s).any()]
    summary: dict[str, Any] = {
        "name": manifest.name,
        "root": str(manifest.root),
        "images": len(frame),
        "patients": int(frame["patient_id"].dropna().nunique()) if "patient_id" in frame else None,
        "images_without_patient": int(frame["patient_id"].isna().sum()) if "patient_id" in frame else len(frame),
        "splits": {s: int((split == s).sum()) for s in order},
        "patients_per_split": (
            {s: int(frame.loc[split == s, "patient_id"].dropna().nunique()) for s in order}
            if "patient_id" in frame
            else {}
        ),
        "labels": {},
        "annotations": _annotations(manifest),
        "covariates": {c: round(float(frame[c].notna().mean()), 4) for c in COVARIATES if c in frame and len(frame)},
        "formats": _formats(frame["image"]),
    }
    if "label" in frame:
        label = frame["label"].astype("string").fillna(NO_LABEL)
        summary["labels"] = {
            s: {str(k): int(v) for k, v in label[split == s].value_counts().sort_index().items()} for s in order
        }
    if "target" in frame and frame["target"].notna().any():
        target = pd.to_numeric(frame["target"], errors="coerce").dropna()
        summary["target"] = {"min": float(target.min()), "mean": float(target.mean()), "max": float(target.max())}
    return summary


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """Render :func:`summarize`'s dict as rich tables."""
    patients = summary["patients"]
    console.print(
        f"[bold]{summary['name']}[/bold]  {summary['images']} images, "
        f"{patients if patients is not None else 'no'} patients  ({summary['root']})"
    )
    if summary.get("patients_per_split") and patients:
        per_split = ", ".join(f"{s} {n}" for s, n in summary["patients_per_split"].items())
        console.print(f"patients per split: {per_split}")
    if summary["images_without_patient"]:
        console.print(
            f"[yellow]{summary['images_without_patient']} image(s) without patient_id: "
            "splits cannot group them by patient.[/yellow]"
        )
    splits = list(summary["splits"])
    labels = sorted({label for counts in summary["labels"].values() for label in counts})
    table = Table(title="Images per split and label", show_footer=True)
    table.add_column("label", footer="total")
    for s in splits:
        table.add_column(s, justify="right", footer=str(summary["splits"][s]))
    table.add_column("all", justify="right", footer=str(summary["images"]))
    for label in labels:
        counts = [summary["labels"][s].get(label, 0) for s in splits]
        table.add_row(label, *map(str, counts), str(sum(counts)))
    console.print(table)

    ann = summary["annotations"]
    if any(ann.values()):
        table = Table(title="Annotations")
        for column in ("boxes", "images with boxes", "polygons", "images with polygons", "masks"):
            table.add_column(column, justify="right")
        keys = ("boxes", "images_with_boxes", "polygons", "images_with_polygons", "masks")
        table.add_row(*(str(ann[key]) for key in keys))
        console.print(table)
    if summary["covariates"]:
        table = Table(title="Covariate coverage")
        table.add_column("column")
        table.add_column("present", justify="right")
        for column, fraction in summary["covariates"].items():
            table.add_row(column, f"{100 * fraction:.1f}%")
        console.print(table)
    if "target" in summary:
        t = summary["target"]
        console.print(f"target: min {t['min']:.4g}, mean {t['mean']:.4g}, max {t['max']:.4g}")
    formats = ", ".join(f"{ext or '(none)'}: {n}" for ext, n in summary["formats"].items())
    console.print(f"formats: {formats}")


def _annotations(manifest: Manifest) -> dict[str, int]:
    frame = manifest.frame
    counts = {"boxes": 0, "images_with_boxes": 0, "polygons": 0, "images_with_polygons": 0, "masks": 0}
    for column, total, images in (
        ("boxes", "boxes", "images_with_boxes"),
        ("polygons", "polygons", "images_with_polygons"),
    ):
        if column not in frame:
            continue
        for value in frame[column].dropna():
            n = len(json_list(value, column=column))
            counts[total] += n
            counts[images] += n > 0
    if "mask" in frame:
        counts["masks"] = int((frame["mask"].notna() & (frame["mask"].astype("string").str.len() > 0)).sum())
    return counts


def _formats(images: pd.Series) -> dict[str, int]:
    def extension(path: str) -> str:
        name = PurePath(str(path).replace("\\", "/")).name.lower()
        if name.endswith(".nii.gz"):
            return ".nii.gz"
        return PurePath(name).suffix

    return {str(k): int(v) for k, v in images.map(extension).value_counts().sort_index().items()}
