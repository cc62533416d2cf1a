"""A pipeline's result: one entry per finding per image and per study, as a table and as documented JSON.

JSON schema ``osteon.pipeline.result/1`` (``docs/pipelines.md`` documents every key)::

    {"schema": "osteon.pipeline.result/1",
     "pipeline": {"name", "version", "file_sha256"},
     "runs": {key: {"path", "version", "kind", "classes"}},
     "studies": [{"study_id", "patient_id", "images": [image paths],
                  "findings": [{"name", "stage", "run", "run_version", "probability", "threshold", "positive",
                                "grade", "value", "status", "n_images"}]}],
     "images": [{"image", "patient_id", "study_id", "view", "laterality", "status", "error",
                 "gates": {stage: {"probability", "passed"}},
                 "findings": [{"name", "stage", "run", "run_version", "probability", "threshold", "positive",
                               "grade", "value", "status", "regions": [{"xyxy", "score", "label", "probability"}],
                               "boxes": [{"xyxy", "score", "label"}], "mask": path or null}]}]}

``status`` of a finding: ``ok``; ``no_region`` (the source stage found nothing to cut: the score is the stage's
``empty_score``); ``rejected`` (a gate stopped the image); ``error`` (the image could not be read).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from osteon.data.manifest import Manifest

if TYPE_CHECKING:
    from osteon.pipelines.runner import LoadedRun, Pipeline, StageOutput
    from osteon.pipelines.schema import FindingSpec

SCHEMA = "osteon.pipeline.result/1"
ID_COLUMNS = ("image", "patient_id", "study_id", "view", "laterality")


def combine(values: np.ndarray, how: str, *, threshold: float) -> float:
    """Regions or images → one score: ``max``, ``mean``, or ``any`` (1.0 when one value ≥ ``threshold``)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan
    if how == "max":
        return float(values.max())
    if how == "mean":
        return float(values.mean())
    return float((values >= threshold).any())


def row_scores(run: LoadedRun, table: pd.DataFrame, cls: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per table row: the finding's probability, grade (or NA) and value (or nan) from a stage's predictions.

    class: ``prob_<cls>``; grade: P(grade ≥ ``cls``) = the sum of ``prob_<g>`` for grades from ``cls`` up;
    boxes: the highest score of boxes labelled ``cls`` (any label when ``cls`` is None), 0 without boxes;
    mask: 1.0 when the ``cls`` (any) channel has pixels, else 0.0; value: no probability.
    """
    n = len(table)
    probability = np.full(n, np.nan)
    grade = np.full(n, None, dtype=object)
    value = np.full(n, np.nan)
    if not n:
        return probability, grade, value
    if run.kind == "class" and cls is not None:
        probability = pd.to_numeric(table[f"prob_{cls}"], errors="coerce").to_numpy(float)
    elif run.kind == "grade":
        grade = table["prediction"].astype(object).to_numpy()
        if cls is not None:
            upper = run.classes[run.classes.index(cls) :]
            probability = table[[f"prob_{g}" for g in upper]].apply(pd.to_numeric, errors="coerce").sum(axis=1)
            probability = probability.to_numpy(float)
    elif run.kind == "boxes":
        probability = np.array([_best_box(v, cls) for v in table["pred_boxes"]])
    elif run.kind == "mask":
        names = [cls] if cls is not None else run.classes
        areas = table[[f"area_px_{column_key(c)}" for c in names]].apply(pd.to_numeric, errors="coerce")
        probability = (areas.fillna(0).to_numpy() > 0).any(axis=1).astype(float)
    elif run.kind == "value":
        value = pd.to_numeric(table["prediction"], errors="coerce").to_numpy(float)
    probability = np.array(probability, dtype=np.float64)  # a writable copy
    if "error" in table:
        probability[table["error"].fillna("").to_numpy() != ""] = np.nan
    return probability, grade, value


def column_key(name: str) -> str:
    """A class name as the segment predictions table spells it in column names (``area_px_<key>``)."""
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in str(name))


def _best_box(cell: Any, cls: str | None) -> float:
    boxes = json.loads(cell) if isinstance(cell, str) and cell else []
    scores = [b.get("score", 1.0) for b in boxes if cls is None or b["label"] == cls]
    return float(max(scores)) if scores else 0.0


@dataclass
class PipelineResult:
    """Findings per image (``findings``: one row per image × finding) and the stages' own tables."""

    pipeline: Pipeline
    manifest: Manifest
    findings: pd.DataFrame
    stages: dict[str, pd.DataFrame]
    gates: dict[str, pd.DataFrame]
    details: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def build(
        cls, pipeline: Pipeline, manifest: Manifest, outputs: dict[str, StageOutput], gates: dict[str, pd.DataFrame]
    ) -> PipelineResult:
        frame = manifest.frame
        rejected: dict[int, str] = {}
        for name, gate in gates.items():
            for row in gate.loc[~gate["passed"], "row"]:
                rejected.setdefault(int(row), name)
        rows: list[dict[str, Any]] = []
        details: dict[tuple[int, str], dict[str, Any]] = {}
        for finding in pipeline.spec.effective_findings():
            stage = pipeline.spec.stage(finding.stage)
            run = pipeline.runs[stage.run]
            target = finding.class_ if finding.class_ is not None else run.positive_class
            threshold = finding.threshold if finding.threshold is not None else run.threshold
            threshold = pipeline.thresholds.get(finding.name, threshold)  # chosen on val images (region stages)
            out = outputs[stage.name]
            table = out.table
            prob, grade, value = row_scores(run, table, target)
            by_row: dict[int, list[int]] = {}
            for i, r in enumerate(table["row"].to_numpy() if len(table) else []):
                by_row.setdefault(int(r), []).append(i)
            errors = _errors(outputs, pipeline)
            for row in range(len(frame)):
                entry: dict[str, Any] = {
                    "row": row,
                    **{c: frame[c].iat[row] for c in ID_COLUMNS if c in frame},
                    "finding": finding.name,
                    "stage": stage.name,
                    "run": stage.run,
                    "run_version": run.version,
                    "threshold": threshold,
                    "n_regions": 0,
                }
                idx = by_row.get(row, [])
                regions: list[dict[str, Any]] = []
                if row in errors:
                    status, probability = "error", math.nan
                elif row in rejected and rejected[row] != stage.name:  # a gate's own finding keeps its score
                    status, probability = f"rejected:{rejected[row]}", math.nan
                elif stage.input is not None:
                    entry["n_regions"] = len(idx)
                    if idx:
                        status = "ok"
                        rule = pipeline.learned.get(stage.name) if stage.combine == "learned" else None
                        if rule is not None:
                            probability = rule(prob[idx], table["region_score"].to_numpy(np.float64)[idx])
                        else:  # a learned stage being fitted combines by max meanwhile
                            how = "max" if stage.combine == "learned" else stage.combine
                            probability = combine(prob[idx], how, threshold=threshold)
                        regions = [
                            {
                                "xyxy": [int(table[c].iat[i]) for c in ("x1", "y1", "x2", "y2")],
                                "score": round(float(table["region_score"].iat[i]), 4),
                                "label": str(table["region_label"].iat[i]),
                                "probability": _num(prob[i]),
                            }
                            for i in idx
                        ]
                    else:
                        status, probability = "no_region", stage.empty_score
                elif idx:
                    status, probability = "ok", float(prob[idx[0]])
                else:  # not run (an earlier failure)
                    status, probability = "error", math.nan
                entry["status"] = status
                entry["probability"] = probability
                entry["positive"] = bool(probability >= threshold) if np.isfinite(probability) else None
                entry["grade"] = _grade(grade, idx, stage.combine) if status == "ok" else None
                entry["value"] = combine(value[idx], "mean", threshold=0) if idx and status == "ok" else math.nan
                rows.append(entry)
                details[(row, finding.name)] = {
                    "regions": regions,
                    "boxes": _boxes(run, table, idx) if status == "ok" else [],
                    "mask": _mask(run, table, idx) if status == "ok" and stage.input is None else None,
                }
        findings = pd.DataFrame(rows)
        stages = {name: out.table for name, out in outputs.items()}
        return cls(pipeline, manifest, findings, stages, gates, details)

    # ------------------------------------------------------------------------------------------ views
    def study_key(self) -> pd.Series:
        """The study of each image: ``study_id``, else ``patient_id``, else the image itself."""
        frame = self.manifest.frame
        key = frame["image"].astype(str)
        for column in ("patient_id", "study_id"):
            if column in frame:
                key = frame[column].astype("string").fillna(key).astype(str)
        return key

    def studies(self) -> pd.DataFrame:
        """One row per study × finding: the images' probabilities combined by the finding's ``study_combine``."""
        keys = self.study_key()
        findings = self.findings.assign(study=keys.iloc[self.findings["row"]].to_numpy())
        specs = {f.name: f for f in self.pipeline.spec.effective_findings()}
        rows = []
        for (study, name), group in findings.groupby(["study", "finding"], sort=False):
            spec: FindingSpec = specs[name]
            usable = group[group["status"].isin(["ok", "no_region"])]
            threshold = float(group["threshold"].iat[0])
            probability = combine(usable["probability"].to_numpy(float), spec.study_combine, threshold=threshold)
            grades = [g for g in usable["grade"] if g is not None and not (isinstance(g, float) and math.isnan(g))]
            status = "ok" if len(usable) else str(group["status"].iat[0])
            rows.append(
                {
                    "study": study,
                    "patient_id": group["patient_id"].iat[0] if "patient_id" in group else None,
                    "finding": name,
                    "stage": group["stage"].iat[0],
                    "run": group["run"].iat[0],
                    "run_version": group["run_version"].iat[0],
                    "probability": probability,
                    "threshold": threshold,
                    "positive": bool(probability >= threshold) if np.isfinite(probability) else None,
                    "grade": max(grades, key=_grade_order) if grades else None,
                    "value": float(np.nanmean(usable["value"])) if usable["value"].notna().any() else math.nan,
                    "status": status,
                    "n_images": len(usable),
                    "rows": group["row"].tolist(),
                }
            )
        return pd.DataFrame(rows)

    def to_json(self) -> dict[str, Any]:
        """The result as the documented JSON structure (module docstring; ``docs/pipelines.md``)."""
        spec = self.pipeline.spec
        images = []
        frame = self.manifest.frame
        for row in range(len(frame)):
            group = self.findings[self.findings["row"] == row]
            statuses = set(group["status"])
            image = {c: _plain(frame[c].iat[row]) for c in ID_COLUMNS if c in frame}
            image["image"] = str(self.manifest.resolve(str(frame["image"].iat[row])))
            image["status"] = (
                "error"
                if "error" in statuses
                else ("rejected" if any(s.startswith("rejected") for s in statuses) else "ok")
            )
            image["error"] = self._error_of(row)
            image["gates"] = {
                name: {"probability": _num(g.loc[g["row"] == row, "probability"]), "passed": _passed(g, row)}
                for name, g in self.gates.items()
            }
            image["findings"] = [
                {
                    **_finding_json(rec),
                    **self.details[(row, rec["finding"])],
                }
                for rec in group.to_dict("records")
            ]
            images.append(image)
        studies = []
        table = self.studies()
        for study, group in table.groupby("study", sort=False):
            first = group.iloc[0]
            rows = sorted({r for rs in group["rows"] for r in rs})
            studies.append(
                {
                    "study_id": str(study),
                    "patient_id": _plain(first["patient_id"]),
                    "images": [images[r]["image"] for r in rows],
                    "findings": [
                        {**_finding_json(rec), "n_images": int(rec["n_images"])} for rec in group.to_dict("records")
                    ],
                }
            )
        runs = {
            key: {"path": str(run.path), "version": run.version, "kind": run.kind, "classes": run.classes}
            for key, run in self.pipeline.runs.items()
        }
        sha = hashlib.sha256(spec.model_dump_json(by_alias=True).encode()).hexdigest()[:12]
        return {
            "schema": SCHEMA,
            "pipeline": {"name": spec.name, "version": spec.version, "file_sha256": sha},
            "runs": runs,
            "studies": studies,
            "images": images,
        }

    def _error_of(self, row: int) -> str:
        for table in self.stages.values():
            if "error" in table and "region" not in table:
                hit = table.loc[table["row"] == row, "error"]
                if len(hit) and isinstance(hit.iat[0], str) and hit.iat[0]:
                    return hit.iat[0]
        return ""

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``result.json``, ``findings.csv``, ``studies.csv``, ``stages/<stage>.csv`` and ``pipeline.yaml``.

        ``pipeline.yaml`` is the pipeline with absolute run paths and model versions: running it reproduces the result.
        """
        out = Path(out)
        (out / "stages").mkdir(parents=True, exist_ok=True)
        paths = {
            "result": out / "result.json",
            "findings": out / "findings.csv",
            "studies": out / "studies.csv",
        }
        paths["pipeline"] = out / "pipeline.yaml"
        paths["result"].write_text(json.dumps(self.to_json(), indent=1, allow_nan=False, default=str))
        versions = {key: run.version for key, run in self.pipeline.runs.items()}
        paths["pipeline"].write_text(yaml.safe_dump(self.pipeline.spec.frozen(versions), sort_keys=False))
        self.findings.to_csv(paths["findings"], index=False)
        self.studies().drop(columns="rows").to_csv(paths["studies"], index=False)
        for name, table in self.stages.items():
            table.to_csv(out / "stages" / f"{name}.csv", index=False)
        return paths


def _errors(outputs: dict[str, StageOutput], pipeline: Pipeline) -> dict[int, str]:
    errors: dict[int, str] = {}
    for name in pipeline.spec.order():
        table = outputs[name].table
        if pipeline.spec.stage(name).input is None and "error" in table:
            for r, e in zip(table["row"], table["error"].fillna(""), strict=True):
                if e:
                    errors.setdefault(int(r), str(e))
    return errors


def _grade(grade: np.ndarray, idx: list[int], how: str) -> str | None:
    values = [g for g in grade[idx] if g is not None and not (isinstance(g, float) and math.isnan(g))]
    if not values:
        return None
    return str(max(values, key=_grade_order))


def _grade_order(g: Any) -> Any:
    text = str(g)
    return (0, int(text)) if text.lstrip("-").isdigit() else (1, text)


def _boxes(run: LoadedRun, table: pd.DataFrame, idx: list[int]) -> list[dict[str, Any]]:
    """Boxes of a boxes stage in ORIGINAL pixels: a whole-image stage's own; a region stage's moved by each
    region's offset (:func:`osteon.pipelines.geometry.boxes_to_original`); a mask stage on regions gives each
    region's class bounding boxes (``bbox_<class>``) the same way."""
    from osteon.pipelines.geometry import Region, boxes_to_original

    if not idx or run.kind not in ("boxes", "mask"):
        return []
    out: list[dict[str, Any]] = []
    regional = "x1" in table
    for i in idx:
        if run.kind == "boxes":
            cell = table["pred_boxes"].iat[i]
            boxes = json.loads(cell) if isinstance(cell, str) and cell else []
        elif regional:
            boxes = _mask_boxes(run, table, i)
        else:
            continue
        if regional:
            region = Region(tuple(int(table[c].iat[i]) for c in ("x1", "y1", "x2", "y2")), 0.0, "")  # type: ignore[arg-type]
            for box in boxes:
                moved = boxes_to_original(np.array([box["xyxy"]]), region)[0]
                out.append({**box, "xyxy": [round(float(v), 2) for v in moved], "region": int(table["region"].iat[i])})
        else:
            out.extend(boxes)
    return out


def _mask_boxes(run: LoadedRun, table: pd.DataFrame, i: int) -> list[dict[str, Any]]:
    boxes = []
    for name in run.classes:
        cell = table[f"bbox_{column_key(name)}"].iat[i] if f"bbox_{column_key(name)}" in table else None
        value = json.loads(cell) if isinstance(cell, str) and cell.startswith("[") else cell
        if isinstance(value, list | tuple | np.ndarray) and len(value) == 4:
            boxes.append({"xyxy": [float(v) for v in value], "label": name})
    return boxes


def _mask(run: LoadedRun, table: pd.DataFrame, idx: list[int]) -> str | None:
    if run.kind != "mask" or not idx or "mask_file" not in table:
        return None
    cell = table["mask_file"].iat[idx[0]]
    return cell if isinstance(cell, str) and cell else None


def _num(value: Any) -> float | None:
    if isinstance(value, pd.Series):
        value = value.iat[0] if len(value) else math.nan
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def _passed(gate: pd.DataFrame, row: int) -> bool | None:
    hit = gate.loc[gate["row"] == row, "passed"]
    return bool(hit.iat[0]) if len(hit) else None


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _finding_json(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": rec["finding"],
        "stage": rec["stage"],
        "run": rec["run"],
        "run_version": rec["run_version"],
        "probability": _num(rec["probability"]),
        "threshold": _num(rec["threshold"]),
        "positive": rec["positive"],
        "grade": _plain(rec["grade"]),
        "value": _num(rec["value"]),
        "status": rec["status"],
    }
