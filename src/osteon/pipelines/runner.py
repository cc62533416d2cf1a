"""Running a pipeline: each stage's Predictor on whole images or on regions cut from an earlier stage's output.

Stages only call :class:`osteon.engine.Predictor` and read its predictions table (``prob_<class>``,
``pred_boxes``, ``mask_file`` ...); they never reach into a task. A stage's kind of output comes from its task's
``prediction_type`` capability.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from osteon.data.manifest import Manifest
from osteon.pipelines.geometry import Region, crop_window, cut, mask_components, tiles_along
from osteon.pipelines.learned_combine import FILE as LEARNED_FILE
from osteon.pipelines.learned_combine import LearnedCombine, load_finding_threshold, load_learned_combine
from osteon.pipelines.schema import PipelineError, PipelineSpec, StageSpec, check_outputs, load_pipeline, model_version

if TYPE_CHECKING:
    from osteon.engine.predictor import Predictor


def output_kind(prediction_type: type | None) -> str:
    """``class | grade | value | boxes | mask`` from a task's ``prediction_type``."""
    from osteon.tasks.predictions import (
        BoxPrediction,
        ClassPrediction,
        GradePrediction,
        MaskPrediction,
        ValuePrediction,
    )

    kinds = {
        ClassPrediction: "class",
        GradePrediction: "grade",
        ValuePrediction: "value",
        BoxPrediction: "boxes",
        MaskPrediction: "mask",
    }
    if prediction_type not in kinds:
        raise PipelineError(f"a task with prediction type {prediction_type!r} cannot be a pipeline stage.")
    return kinds[prediction_type]


@dataclass
class LoadedRun:
    """A run ready to predict: its Predictor, kind of output, classes (no background) and version."""

    key: str
    path: Path
    predictor: Predictor
    kind: str
    classes: list[str]
    version: str

    @property
    def positive_class(self) -> str | None:
        state = self.predictor.task.state
        if state.positive_class:
            return state.positive_class
        if self.kind == "grade" and len(self.classes) > 1:
            return self.classes[1]  # P(grade ≥ the second grade)
        return self.classes[-1] if self.kind == "class" and self.classes else None

    @property
    def threshold(self) -> float:
        point = self.predictor.operating_point
        return float(point["threshold"]) if point and "threshold" in point else 0.5


def load_run(key: str, path: Path) -> LoadedRun:
    """Load ``path`` (a finished run) as a pipeline stage's model."""
    from osteon.engine import Predictor
    from osteon.errors import RunDirError

    try:
        predictor = Predictor.from_run(path)
    except RunDirError as exc:
        raise PipelineError(f"run {key!r}: {exc}") from None
    kind = output_kind(predictor.task.prediction_type)
    classes = list(predictor.task.state.class_names)
    if kind == "mask":
        classes = classes[1:]
    return LoadedRun(key, Path(path), predictor, kind, classes, model_version(Path(path)))


@dataclass
class StageOutput:
    """What one stage produced.

    Attributes:
        table: The Predictor's rows (one per image, or per region) plus ``row`` (Manifest position) and, for
            region stages, ``region`` (index in the image) and ``x1, y1, x2, y2, region_score, region_label``.
        regions: Per Manifest row, the regions this stage was run on (region stages only; may be empty lists).
        ran_on: Manifest rows the stage ran on (passed the gates, readable).
    """

    table: pd.DataFrame
    regions: dict[int, list[Region]] = field(default_factory=dict)
    ran_on: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class Pipeline:
    """A validated pipeline with its runs loaded.

    Example:
        >>> pipeline = Pipeline.from_file("fracture.yaml")  # doctest: +SKIP
        >>> result = pipeline.run(Manifest.load("study/manifest.csv"))  # doctest: +SKIP
        >>> result.to_json()["studies"][0]["findings"][0]["probability"]  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: PipelineSpec,
        runs: dict[str, LoadedRun],
        *,
        source: str = "pipeline",
        learned: dict[str, LearnedCombine] | None = None,
        thresholds: dict[str, float] | None = None,
    ) -> None:
        self.spec = spec
        self.runs = runs
        self.source = source
        #: Fitted ``combine: learned`` rules by stage; a learned stage without one combines by ``max`` (fitting).
        self.learned = dict(learned or {})
        #: Image-level thresholds of region-stage findings chosen on validation (``osteon pipeline train``).
        self.thresholds = dict(thresholds or {})
        check_outputs(spec, {k: (r.kind, r.classes) for k, r in runs.items()}, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> Pipeline:
        return cls.from_spec(load_pipeline(path), source=str(path))

    @classmethod
    def from_spec(cls, spec: PipelineSpec, *, source: str = "pipeline", fitting: bool = False) -> Pipeline:
        """Load every run of ``spec``; ``fitting``: a ``combine: learned`` stage may lack its fitted rule."""
        runs = {}
        for key in sorted({s.run for s in spec.stages}):
            path = spec.run_path(key)
            if not (path / "model.pt").is_file():
                raise PipelineError(
                    f"{source}: run {key!r} has no model at {path / 'model.pt'}. Fix: train it "
                    "(osteon train, or osteon pipeline train for stages with a train: block) or correct runs:."
                )
            runs[key] = load_run(key, path)
            saved = spec.versions.get(key)
            if saved is not None and saved != runs[key].version:
                raise PipelineError(
                    f"{source}: run {key!r} at {path} has model version {runs[key].version}, but the pipeline was "
                    f"saved with {saved}; its results would differ. Fix: point runs: at the saved model, or delete "
                    "the versions: entry to accept the new one."
                )
        learned = {}
        for stage in spec.stages:
            if stage.combine != "learned":
                continue
            rule = load_learned_combine(spec.run_path(stage.run), spec.name, stage.name)
            if rule is None and not fitting:
                raise PipelineError(
                    f"{source}: stage {stage.name!r} combines its regions with a learned rule, but none was fitted "
                    f"({spec.run_path(stage.run) / LEARNED_FILE} has no {spec.name}/{stage.name}). Fix: run "
                    "osteon pipeline train PIPELINE DATA (it fits the rule on the val split), or use combine: max."
                )
            if rule is not None:
                learned[stage.name] = rule
        thresholds = {}
        for finding in spec.effective_findings():
            stage = spec.stage(finding.stage)
            if finding.threshold is None and stage.input is not None:
                chosen = load_finding_threshold(spec.run_path(stage.run), spec.name, finding.name)
                if chosen is not None:
                    thresholds[finding.name] = chosen
        return cls(spec, runs, source=source, learned=learned, thresholds=thresholds)

    def stage_run(self, stage: str | StageSpec) -> LoadedRun:
        spec = self.spec.stage(stage) if isinstance(stage, str) else stage
        return self.runs[spec.run]

    # ------------------------------------------------------------------------------------------ running
    def run(
        self, manifest: Manifest, *, batch_size: int = 32, work_dir: Path | None = None, progress: bool = False
    ) -> PipelineResult:
        """Run every stage on the Manifest's images and combine the findings (see :mod:`osteon.pipelines.results`)."""
        from osteon.pipelines.results import PipelineResult

        with tempfile.TemporaryDirectory(prefix="osteon-pipeline-") as tmp:
            folder = Path(work_dir) if work_dir is not None else Path(tmp)
            outputs: dict[str, StageOutput] = {}
            active = np.arange(len(manifest))
            gates: dict[str, pd.DataFrame] = {}
            images = _ImageCache(manifest)
            for name in self.spec.order():
                stage = self.spec.stage(name)
                if stage.input is None:
                    out = self._whole_image(stage, manifest, active, folder, batch_size, progress)
                else:
                    out = self._regions(stage, manifest, outputs[stage.input.source], images, batch_size)
                outputs[name] = out
                if stage.gate is not None:
                    gate = self._gate(stage, out)
                    gates[name] = gate
                    active = np.intersect1d(active, gate.loc[gate["passed"], "row"].to_numpy(np.int64))
            return PipelineResult.build(self, manifest, outputs, gates)

    def _whole_image(
        self, stage: StageSpec, manifest: Manifest, rows: np.ndarray, folder: Path, batch_size: int, progress: bool
    ) -> StageOutput:
        run = self.stage_run(stage)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the full Manifest already warned (e.g. about missing patient ids)
            subset = Manifest(manifest.frame.iloc[rows].reset_index(drop=True), manifest.root, name=manifest.name)
        table = run.predictor.predict_manifest(
            subset, batch_size=batch_size, progress=progress, out_dir=folder / "masks" / stage.name
        )
        if len(table) != len(rows):
            raise PipelineError(
                f"stage {stage.name!r}: run {stage.run!r} returned {len(table)} rows for {len(rows)} images (a study "
                "model predicts one row per study); pipeline stages take image-level runs."
            )
        table.insert(0, "row", rows)
        ok = table["error"].fillna("") == ""
        return StageOutput(table, ran_on=rows[ok.to_numpy()])

    def _regions(
        self, stage: StageSpec, manifest: Manifest, source: StageOutput, images: _ImageCache, batch_size: int
    ) -> StageOutput:
        run = self.stage_run(stage)
        assert stage.input is not None
        src = self.stage_run(stage.input.source)
        ok = source.table["error"].fillna("") == "" if "error" in source.table else slice(None)
        regions_of = _source_regions(src.kind, src.classes, source.table[ok], stage)
        crops: list[np.ndarray] = []
        names: list[str] = []
        meta: list[dict[str, Any]] = []
        for row in source.ran_on:
            regions = regions_of.get(int(row), [])
            if not regions:
                continue
            image = images.get(int(row))
            for k, region in enumerate(regions):
                crops.append(cut(image, region))
                names.append(f"{manifest.frame['image'].iat[row]}#region={k}")
                x1, y1, x2, y2 = region.xyxy
                meta.append(
                    {"row": int(row), "region": k, "x1": x1, "y1": y1, "x2": x2, "y2": y2}
                    | {"region_score": region.score, "region_label": region.label}
                )
        if crops:
            table = run.predictor.predict_frames(crops, names, batch_size=batch_size)
            table = pd.concat([pd.DataFrame(meta), table.reset_index(drop=True)], axis=1)
        else:
            table = pd.DataFrame(columns=["row", "region", "x1", "y1", "x2", "y2", "region_score", "region_label"])
        return StageOutput(table, regions=regions_of, ran_on=source.ran_on)

    def _gate(self, stage: StageSpec, out: StageOutput) -> pd.DataFrame:
        gate = stage.gate
        assert gate is not None
        column = f"prob_{gate.class_}"
        table = out.table
        probability = pd.to_numeric(table[column], errors="coerce") if column in table else np.nan
        frame = pd.DataFrame({"row": table["row"].to_numpy(), "probability": probability})
        frame["passed"] = frame["probability"].fillna(-1) >= gate.min_probability
        return frame


class _ImageCache:
    """Original images of the Manifest as grey float ``(H, W)`` in [0, 1], read once each."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.cache: dict[int, np.ndarray] = {}

    def get(self, row: int) -> np.ndarray:
        if row not in self.cache:
            from osteon.io import read_image, to_grayscale_float

            path = self.manifest.resolve(str(self.manifest.frame["image"].iat[row]))
            self.cache[row] = to_grayscale_float(read_image(path)).astype(np.float32)
        return self.cache[row]


def _source_regions(kind: str, classes: list[str], table: pd.DataFrame, consumer: StageSpec) -> dict[int, list[Region]]:
    """Regions per Manifest row from a boxes/mask stage's table, cut the way ``consumer`` asks."""
    assert consumer.input is not None
    crop, tile = consumer.input.crop, consumer.input.tile
    out: dict[int, list[Region]] = {}
    for _, rec in table.iterrows():
        row = int(rec["row"])
        hw = (int(rec["height"]), int(rec["width"]))
        regions: list[Region] = []
        if kind == "boxes" and crop is not None:
            boxes = json.loads(rec["pred_boxes"]) if isinstance(rec["pred_boxes"], str) else []
            boxes = [b for b in boxes if b.get("score", 1.0) >= crop.min_score]
            boxes = [b for b in boxes if crop.classes is None or b["label"] in crop.classes]
            boxes = sorted(boxes, key=lambda b: -b.get("score", 1.0))[: crop.top_k]
            for b in boxes:
                window = crop_window(
                    b["xyxy"], margin=crop.margin, min_size=crop.min_size, square=crop.square, image_hw=hw
                )
                regions.append(Region(window, float(b.get("score", 1.0)), str(b["label"])))
        elif kind == "mask":
            channels = _mask_channels(rec, classes)
            wanted = (crop or tile).classes  # type: ignore[union-attr]
            for label, channel in channels.items():
                if wanted is not None and label not in wanted:
                    continue
                if crop is not None:
                    for bbox, area in mask_components(channel)[: crop.top_k]:
                        window = crop_window(
                            bbox, margin=crop.margin, min_size=crop.min_size, square=crop.square, image_hw=hw
                        )
                        regions.append(Region(window, area, label))
                elif tile is not None:
                    found = tiles_along(
                        channel,
                        size=tile.size,
                        stride=tile.stride or tile.size,
                        min_coverage=tile.min_coverage,
                        max_tiles=tile.max_tiles,
                    )
                    regions.extend(Region(r.xyxy, r.score, label) for r in found)
        out[row] = regions
    return out


def _mask_channels(rec: pd.Series, classes: list[str]) -> dict[str, np.ndarray]:
    """Foreground channels of a mask stage's row: ``{class: (H, W) bool}`` read from ``mask_file``.

    A single file is a class-index map (value k = ``classes[k - 1]``); several ``|``-joined files are one
    channel each (multi-label models).
    """
    from PIL import Image as PILImage

    paths = rec.get("mask_file", "")
    if not isinstance(paths, str) or not paths:
        return {}
    files = paths.split("|")
    if len(files) > 1:
        return {n: np.asarray(PILImage.open(f)) > 0 for n, f in zip(classes, files, strict=False)}
    labels = np.asarray(PILImage.open(files[0]))
    return {n: labels == k for k, n in enumerate(classes, start=1)}


if TYPE_CHECKING:
    from osteon.pipelines.results import PipelineResult
