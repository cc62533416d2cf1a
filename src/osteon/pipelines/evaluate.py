"""Scoring a pipeline's end result with CIs, and blaming each error on the stage that caused it.

For a finding with a binary truth (``truth:`` column of the Manifest, ``positive:`` value), every image's final
decision is compared with the truth. A wrong one is attributed by walking back along the stages:

* a positive image a gate rejected → the gate (``rejected by gate``);
* a positive image whose finding comes from regions, where the source stage cut no region → the source
  (``missed by localiser``); where it cut regions but none holds a true box (``boxes`` column) → the source
  (``localised elsewhere``); where a region holds the lesion but the score stays under the threshold → the
  finding's stage (``misclassified``);
* a negative image called positive → the finding's stage (``misclassified``), noting whether the region it
  called came from a false localisation.

Scores use :func:`osteon.metrics.binary_report` (AUC, sensitivity/specificity at the threshold, bootstrap CIs by
patient); rejected and no-region images score their ``empty_score`` (0 by default) so every image counts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from osteon.pipelines.geometry import Region, overlaps
from osteon.pipelines.results import PipelineResult
from osteon.pipelines.schema import FindingSpec, PipelineError

#: Attribution reasons, in the order reports list them.
REASONS = ("rejected by gate", "missed by localiser", "localised elsewhere", "misclassified")


def truth_of(manifest_frame: pd.DataFrame, finding: FindingSpec, positive_class: str | None) -> np.ndarray:
    """``(N,)`` float 1/0 truth of a finding (nan where unknown) from its ``truth`` column."""
    column = finding.truth
    if column is None or column not in manifest_frame:
        raise PipelineError(
            f"finding {finding.name!r}: no truth column {column!r} in the data. Fix: set truth: COLUMN (and "
            "positive: VALUE) on the finding in the pipeline file."
        )
    values = manifest_frame[column].map(_label)
    positive = finding.positive or ("1" if "1" in set(values.dropna()) else positive_class)
    out = np.where(values.isna(), np.nan, (values == positive).astype(float))
    return out.astype(float)


def _label(value: Any) -> Any:
    """A truth cell as a string (``1.0`` from a CSV → ``"1"``); missing stays NA."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return pd.NA
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def attribute(result: PipelineResult, finding: FindingSpec, truth: np.ndarray) -> pd.DataFrame:
    """One row per image with a truth: ``correct``, ``error`` (FP/FN), ``stage`` and ``reason`` of an error."""
    spec = result.pipeline.spec
    rows = result.findings[result.findings["finding"] == finding.name].set_index("row")
    stage = spec.stage(finding.stage)
    source = stage.input.source if stage.input is not None else None
    frame = result.manifest.frame
    records = []
    for row in range(len(frame)):
        if not np.isfinite(truth[row]):
            continue
        rec = rows.loc[row]
        status = str(rec["status"])
        if status == "error":
            continue
        probability = rec["probability"]
        threshold = float(rec["threshold"])
        called = bool(np.isfinite(probability) and probability >= threshold)
        positive = bool(truth[row] == 1)
        entry: dict[str, Any] = {
            "row": row,
            "image": frame["image"].iat[row],
            "truth": int(positive),
            "probability": probability,
            "called": int(called),
            "status": status,
            "error": "",
            "stage": "",
            "reason": "",
        }
        if called != positive:
            entry["error"] = "FN" if positive else "FP"
            entry["stage"], entry["reason"] = _blame(result, finding, row, status, positive, source)
        records.append(entry)
    return pd.DataFrame(records)


def _blame(
    result: PipelineResult, finding: FindingSpec, row: int, status: str, positive: bool, source: str | None
) -> tuple[str, str]:
    if status.startswith("rejected:"):
        return status.split(":", 1)[1], "rejected by gate"
    if source is None:
        return finding.stage, "misclassified"
    if positive:
        if status == "no_region":
            return source, "missed by localiser"
        truth_boxes = _truth_boxes(result, row)
        regions = [
            Region(tuple(r["xyxy"]), r["score"], r["label"]) for r in result.details[(row, finding.name)]["regions"]
        ]
        if truth_boxes is not None and len(truth_boxes) and not any(overlaps(r, truth_boxes) for r in regions):
            return source, "localised elsewhere"
    return finding.stage, "misclassified"


def _truth_boxes(result: PipelineResult, row: int) -> np.ndarray | None:
    frame = result.manifest.frame
    if "boxes" not in frame:
        return None
    from osteon.data.boxes import box_records

    cell = frame["boxes"].iat[row]
    if not isinstance(cell, str):
        return None
    records = box_records(cell, image=str(frame["image"].iat[row]))
    return np.array([r["xyxy"] for r in records], dtype=np.float64).reshape(-1, 4)


def localiser_recall(result: PipelineResult, finding: FindingSpec, truth: np.ndarray) -> dict[str, Any] | None:
    """For a finding fed by regions: the share of positive images where a region holds a true box (or any region)."""
    stage = result.pipeline.spec.stage(finding.stage)
    if stage.input is None:
        return None
    hit = found = total = 0
    for row in np.flatnonzero(truth == 1):
        regions = result.details[(int(row), finding.name)]["regions"]
        if str(result.findings.query("row == @row and finding == @finding.name")["status"].iat[0]) not in (
            "ok",
            "no_region",
        ):
            continue
        total += 1
        found += bool(regions)
        boxes = _truth_boxes(result, int(row))
        if boxes is not None and len(boxes):
            hit += any(overlaps(Region(tuple(r["xyxy"]), r["score"], r["label"]), boxes) for r in regions)
    return {
        "stage": stage.input.source,
        "positive_images": total,
        "with_region": found,
        "with_region_on_lesion": hit,
        "recall_any_region": found / total if total else math.nan,
        "recall_on_lesion": hit / total if total else math.nan,
    }


def evaluate_result(
    result: PipelineResult, *, n_resamples: int = 1000, seed: int = 0, level: str = "image"
) -> dict[str, Any]:
    """Per finding with a ``truth`` column: metrics with CIs at image and study level, error attribution and the
    localiser's recall (findings without ``truth`` are not scored).

    Returns:
        ``{finding: {"image": binary_report, "study": binary_report | None, "attribution": {stage: {reason: n}},
        "errors": [per-image error rows], "localiser": recall dict | None}}``.
    """
    from osteon import metrics

    frame = result.manifest.frame
    out: dict[str, Any] = {}
    studies = result.studies()
    findings = [f for f in result.pipeline.spec.effective_findings() if f.truth is not None]
    if not findings:
        raise PipelineError(
            "no finding of the pipeline names its truth column, so nothing can be scored. Fix: add truth: COLUMN "
            "(and positive: VALUE) to the findings to evaluate."
        )
    for finding in findings:
        run = result.pipeline.runs[result.pipeline.spec.stage(finding.stage).run]
        truth = truth_of(frame, finding, finding.class_ or run.positive_class)
        table = attribute(result, finding, truth)
        if table.empty or table["truth"].nunique() < 2:
            raise PipelineError(
                f"finding {finding.name!r}: the truth column {finding.truth!r} needs positive and negative images "
                f"among the scored ones (got {len(table)} images)."
            )
        scores = table["probability"].astype(float).fillna(_empty_score(result, finding)).to_numpy()
        groups = _patient_groups(frame, table["row"].to_numpy())
        threshold = float(result.findings.loc[result.findings["finding"] == finding.name, "threshold"].iat[0])
        report = metrics.binary_report(
            table["truth"].to_numpy(int), scores, threshold=threshold, groups=groups, n_resamples=n_resamples, seed=seed
        )
        errors = table[table["error"] != ""]
        attribution: dict[str, dict[str, int]] = {}
        for (stage, reason), group in errors.groupby(["stage", "reason"]):
            attribution.setdefault(str(stage), {})[str(reason)] = len(group)
        study_report = _study_report(studies, finding, frame, truth, n_resamples=n_resamples, seed=seed)
        out[finding.name] = {
            "image": report,
            "study": study_report,
            "attribution": attribution,
            "errors": errors.drop(columns=["error"]).assign(kind=errors["error"]).to_dict("records"),
            "localiser": localiser_recall(result, finding, truth),
            "n_unreadable": int((result.findings.query("finding == @finding.name")["status"] == "error").sum()),
        }
    return out


def _patient_groups(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """Bootstrap units: the patient of each row; an image without a patient id is a unit of its own (FracAtlas)."""
    if "patient_id" not in frame or frame["patient_id"].isna().all():
        return None
    patients = frame["patient_id"].astype("string")
    return patients.fillna("image:" + frame["image"].astype(str)).iloc[rows].to_numpy()


def _empty_score(result: PipelineResult, finding: FindingSpec) -> float:
    return float(result.pipeline.spec.stage(finding.stage).empty_score)


def _study_report(
    studies: pd.DataFrame,
    finding: FindingSpec,
    frame: pd.DataFrame,
    truth: np.ndarray,
    *,
    n_resamples: int,
    seed: int,
) -> dict[str, Any] | None:
    """Study-level AUC etc.: a study is positive when any of its images is; skipped when studies are single images."""
    from osteon import metrics

    group = studies[studies["finding"] == finding.name]
    if group.empty or (group["n_images"].max() <= 1 and group["rows"].map(len).max() <= 1):
        return None
    y, s, ids = [], [], []
    for rec in group.to_dict("records"):
        t = truth[rec["rows"]]
        if not np.isfinite(t).any():
            continue
        y.append(int(np.nanmax(t)))
        s.append(rec["probability"] if np.isfinite(rec["probability"]) else 0.0)
        ids.append(rec["patient_id"] if rec["patient_id"] is not None else rec["study"])
    if len(set(y)) < 2:
        return None
    return metrics.binary_report(
        np.array(y),
        np.array(s, dtype=float),
        threshold=float(group["threshold"].iat[0]),
        groups=np.array(ids),
        n_resamples=n_resamples,
        seed=seed,
    )
