"""``osteon pipeline train``: train the stages that have a ``train:`` block, earlier stages first.

A whole-image stage is trained on the data as it is. A region stage is trained on a crop dataset written by
:func:`write_crop_dataset` — crops cut with the stage's own ``crop:``/``tile:`` rule around the TRUE boxes/masks
(``crops_from: truth``) or around what the (already trained) source stage predicts (``crops_from: predictions``,
so the classifier learns on what it will see) — saved as 16-bit PNGs with a Manifest that carries each crop's
patient, split and image-level label, then ``osteon.engine.train`` is called on it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from osteon.data.manifest import Manifest
from osteon.pipelines.geometry import Region, crop_window, cut, mask_components, overlaps, tiles_along
from osteon.pipelines.learned_combine import (
    LearnedCombine,
    fit_learned_combine,
    load_finding_threshold,
    load_learned_combine,
    region_features,
    save_finding_threshold,
    save_learned_combine,
)
from osteon.pipelines.schema import PipelineError, PipelineSpec, StageSpec, load_pipeline

CARRIED = ("patient_id", "study_id", "split", "view", "laterality", "body_part")


def truth_regions(manifest: Manifest, row: int, stage: StageSpec, hw: tuple[int, int]) -> list[Region]:
    """Regions of one image from its true ``boxes`` (crop) or ``mask`` (crop around components, or tiles)."""
    assert stage.input is not None
    crop, tile = stage.input.crop, stage.input.tile
    frame = manifest.frame
    regions: list[Region] = []
    if crop is not None and "boxes" in frame and isinstance(frame["boxes"].iat[row], str):
        for box in manifest.boxes(row):
            if crop.classes is None or str(box.get("label")) in crop.classes:
                window = crop_window(
                    box["xyxy"], margin=crop.margin, min_size=crop.min_size, square=crop.square, image_hw=hw
                )
                regions.append(Region(window, 1.0, str(box.get("label", ""))))
        return regions[: crop.top_k]
    mask = _truth_mask(manifest, row)
    if mask is None:
        return []
    if crop is not None:
        return [
            Region(crop_window(b, margin=crop.margin, min_size=crop.min_size, square=crop.square, image_hw=hw), a, "")
            for b, a in mask_components(mask)[: crop.top_k]
        ]
    assert tile is not None
    return tiles_along(
        mask, size=tile.size, stride=tile.stride or tile.size, min_coverage=tile.min_coverage, max_tiles=tile.max_tiles
    )


def _truth_mask(manifest: Manifest, row: int) -> np.ndarray | None:
    frame = manifest.frame
    if "mask" not in frame or not isinstance(frame["mask"].iat[row], str):
        return None
    from PIL import Image as PILImage

    return np.asarray(PILImage.open(manifest.resolve(frame["mask"].iat[row]))) > 0


def _random_windows(rng: np.random.Generator, hw: tuple[int, int], size: int, count: int) -> list[Region]:
    h, w = hw
    side_y, side_x = min(size, h), min(size, w)
    out = []
    for _ in range(count):
        y, x = int(rng.integers(0, h - side_y + 1)), int(rng.integers(0, w - side_x + 1))
        out.append(Region((x, y, x + side_x, y + side_y), 0.0, "random"))
    return out


def write_crop_dataset(
    spec: PipelineSpec,
    stage_name: str,
    manifest: Manifest,
    out: str | Path,
    *,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
) -> Manifest:
    """Cut the training crops of a region stage and save them with a Manifest (``out/manifest.csv``).

    Columns: ``image`` (the crop PNG), the label column of the stage's ``train.label``, ``source_image``,
    ``x1, y1, x2, y2`` (the crop in the source image), ``on_lesion`` (1 for a crop cut around a true region, or a
    predicted one that holds a true box),
    and the source's ``patient_id``, ``study_id``, ``split`` ... so that splits stay by patient.
    """
    from PIL import Image as PILImage

    from osteon.io import read_image, to_grayscale_float

    stage = spec.stage(stage_name)
    if stage.input is None or stage.train is None:
        raise PipelineError(f"stage {stage_name!r} has no input: with crop:/tile: and train:, so it has no crops.")
    train = stage.train
    if train.label not in manifest.frame:
        raise PipelineError(
            f"stage {stage_name!r}: label column {train.label!r} is not in {manifest.name} "
            f"(columns: {', '.join(manifest.columns)}). Fix: set train.label."
        )
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    predicted = (
        _predicted_regions(spec, stage, manifest, batch_size, progress) if train.crops_from == "predictions" else {}
    )
    rng = np.random.default_rng(seed)
    size = stage.input.tile.size if stage.input.tile is not None else max(stage.input.crop.min_size, 16)  # type: ignore[union-attr]
    rows: list[dict[str, Any]] = []
    frame = manifest.frame
    for row in range(len(frame)):
        label = frame[train.label].iat[row]
        if pd.isna(label):
            continue
        path = manifest.resolve(str(frame["image"].iat[row]))
        image = to_grayscale_float(read_image(path)).astype(np.float32)
        hw = image.shape[-2:]
        truth = truth_regions(manifest, row, stage, hw)
        if train.crops_from == "truth":
            regions = truth or _random_windows(rng, hw, size, train.negatives_per_image)
        else:
            regions = predicted.get(row, [])
        boxes = np.array([r.xyxy for r in truth], dtype=np.float64).reshape(-1, 4)
        for k, region in enumerate(regions):
            on_truth = bool(len(boxes)) and overlaps(region, boxes)
            crop_label = label if (train.crops_from == "truth" or on_truth or not len(boxes)) else train.negative
            if crop_label is None:
                continue
            name = f"images/{path.stem}_r{k}.png"
            PILImage.fromarray(np.round(cut(image, region) * 65535).astype(np.uint16)).save(out / name)
            x1, y1, x2, y2 = region.xyxy
            rows.append(
                {
                    "image": name,
                    train.label: crop_label,
                    **{c: frame[c].iat[row] for c in CARRIED if c in frame},
                    "source_image": str(path),
                    "x1": x1,
                    "y1": y1,
                    "x2": x2,
                    "y2": y2,
                    "on_lesion": int(region in truth if train.crops_from == "truth" else on_truth),
                }
            )
    if not rows:
        raise PipelineError(f"stage {stage_name!r}: no crops could be cut from {manifest.name}.")
    crops = Manifest(pd.DataFrame(rows), root=out, name=f"{manifest.name}_{stage_name}_crops")
    crops.save(out / "manifest.csv", overwrite=True)
    return crops


def _predicted_regions(
    spec: PipelineSpec, stage: StageSpec, manifest: Manifest, batch_size: int, progress: bool
) -> dict[int, list[Region]]:
    from osteon.pipelines.runner import _source_regions, load_run

    assert stage.input is not None
    source = spec.stage(stage.input.source)
    path = spec.run_path(source.run)
    if not (path / "model.pt").is_file():
        raise PipelineError(
            f"stage {stage.name!r} trains on crops from predictions of {source.name!r}, whose run {path} is not "
            "trained yet. Fix: give the source stage a train: block (it is trained first) or use crops_from: truth."
        )
    run = load_run(source.run, path)
    with tempfile.TemporaryDirectory(prefix="osteon-crops-") as tmp:  # masks are read back while cutting
        table = run.predictor.predict_manifest(manifest, batch_size=batch_size, progress=progress, out_dir=Path(tmp))
        table.insert(0, "row", np.arange(len(manifest)))
        return _source_regions(run.kind, run.classes, table[table["error"].fillna("") == ""], stage)


def train_pipeline(
    path: str | Path,
    data: str | Path,
    *,
    stages: list[str] | None = None,
    retrain: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Path]:
    """Train every stage with a ``train:`` block whose run has no ``model.pt`` yet (``retrain``: refuse instead).

    Args:
        path: The pipeline file.
        data: The dataset (Manifest CSV or anything ``osteon train --data`` takes) for whole-image stages; region
            stages read it as a Manifest to cut crops.
        stages: Only these stages (default: all with ``train:``).
        retrain: Train although the run exists (the engine refuses to overwrite a run, so this raises there).
        overrides: TrainConfig options applied to every stage (e.g. ``epochs=1`` for a smoke run).

    Returns:
        ``{stage: run directory}`` of the stages trained now.
    """
    from osteon.data.adapters import load_dataset
    from osteon.engine import TrainConfig, train

    spec = load_pipeline(path)
    manifest = load_dataset(str(data))
    trained: dict[str, Path] = {}
    for name in spec.order():
        stage = spec.stage(name)
        if stage.train is None or (stages is not None and name not in stages):
            continue
        run_dir = spec.run_path(stage.run)
        if (run_dir / "model.pt").is_file() and not retrain:
            continue
        options = {**stage.train.options, **{k: v for k, v in overrides.items() if v is not None}}
        if stage.input is None:
            cfg = TrainConfig.from_sources(**{"data": str(data), **options, "out": str(run_dir)})
        else:
            crops = write_crop_dataset(
                spec, name, manifest, run_dir.parent / f"{run_dir.name}_crops", progress=progress
            )
            options.setdefault("target", stage.train.label)
            cfg = TrainConfig.from_sources(**{**options, "data": str(crops.root / "manifest.csv"), "out": str(run_dir)})
        train(cfg, progress=progress)
        (run_dir / "pipeline_stage.json").write_text(
            json.dumps({"pipeline": spec.name, "stage": name, "crops_from": stage.train.crops_from}, indent=1)
        )
        trained[name] = run_dir
    learned = [s for s in spec.stages if s.combine == "learned" and (stages is None or s.name in stages)]
    fit_learned_rules(spec, manifest, learned, refit=retrain or bool(trained))  # any stage retrained: refit
    fit_finding_thresholds(spec, manifest, refit=retrain or bool(trained))
    return trained


def fit_finding_thresholds(
    spec: PipelineSpec, manifest: Manifest, *, refit: bool = False, batch_size: int = 32
) -> dict[str, float]:
    """Choose the image-level threshold (Youden, on the ``val`` split run through the pipeline) of each finding on a
    region stage that names no ``threshold:`` — the crop classifier's own operating point was chosen on crops, not
    images — and store it beside the stage's run. Findings without truth, data without a val split, or val images
    of one class keep the run's operating point."""
    from osteon.metrics import choose_threshold
    from osteon.pipelines.evaluate import truth_of
    from osteon.pipelines.runner import Pipeline
    from osteon.pipelines.schema import FindingSpec

    todo = []
    for finding in spec.effective_findings():
        stage = spec.stage(finding.stage)
        if finding.threshold is not None or stage.input is None or not (finding.truth or stage.train):
            continue
        if refit or load_finding_threshold(spec.run_path(stage.run), spec.name, finding.name) is None:
            todo.append(finding)
    if not todo or "split" not in manifest.frame or not (manifest.frame["split"] == "val").any():
        return {}
    if any(not (spec.run_path(key) / "model.pt").is_file() for key in spec.runs):
        return {}  # some stage is not trained yet (e.g. --stage detect): chosen when the last one is
    val = manifest.split("val")
    pipeline = Pipeline.from_spec(spec)
    result = pipeline.run(val, batch_size=batch_size)
    chosen: dict[str, float] = {}
    for finding in todo:
        stage = spec.stage(finding.stage)
        run = pipeline.stage_run(stage)
        scored = finding
        if not finding.truth:
            assert stage.train is not None
            scored = FindingSpec(name=finding.name, stage=finding.stage, truth=stage.train.label)
        truth = truth_of(val.frame, scored, finding.class_ or run.positive_class)
        rows = result.findings[result.findings["finding"] == finding.name].set_index("row")["probability"]
        scores = rows.astype(float).reindex(range(len(val))).fillna(stage.empty_score).to_numpy()
        keep = np.isfinite(truth)
        y = truth[keep].astype(int)
        if not len(y) or y.min() == y.max():
            continue
        chosen[finding.name] = choose_threshold(y, scores[keep])
        save_finding_threshold(spec.run_path(stage.run), spec.name, finding.name, chosen[finding.name], len(y))
    return chosen


def fit_learned_rules(
    spec: PipelineSpec, manifest: Manifest, stages: list[StageSpec], *, refit: bool = False, batch_size: int = 32
) -> dict[str, LearnedCombine]:
    """Fit the ``combine: learned`` rule of each of ``stages`` (missing ones, or all with ``refit``) on the ``val``
    split of ``manifest`` run through the whole pipeline, and save it beside the stage's run."""
    from osteon.pipelines.evaluate import truth_of
    from osteon.pipelines.results import row_scores
    from osteon.pipelines.runner import Pipeline
    from osteon.pipelines.schema import FindingSpec

    todo = [s for s in stages if refit or load_learned_combine(spec.run_path(s.run), spec.name, s.name) is None]
    if not todo or any(not (spec.run_path(key) / "model.pt").is_file() for key in spec.runs):
        return {}  # nothing to fit, or a stage is not trained yet: fitted when the last one is
    if "split" not in manifest.frame or not (manifest.frame["split"] == "val").any():
        raise PipelineError(
            f"stages {', '.join(s.name for s in todo)} combine with a learned rule, fitted on validation images, but "
            f"{manifest.name} has no val split. Fix: give the data a split column (osteon data split) so that the "
            "rule is fitted on images no stage trained on, or use combine: max."
        )
    val = manifest.split("val")
    pipeline = Pipeline.from_spec(spec, fitting=True)
    result = pipeline.run(val, batch_size=batch_size)
    fitted: dict[str, LearnedCombine] = {}
    for stage in todo:
        run = pipeline.stage_run(stage)
        finding = next((f for f in spec.effective_findings() if f.stage == stage.name and f.truth), None)
        if finding is None:
            label = stage.train.label if stage.train is not None else "label"
            finding = FindingSpec(name=stage.name, stage=stage.name, truth=label)
        cls = finding.class_ or run.positive_class
        truth = truth_of(val.frame, finding, cls)
        table = result.stages[stage.name]
        prob = row_scores(run, table, cls)[0] if len(table) else np.zeros(0)
        scores = table["region_score"].to_numpy(np.float64) if len(table) else np.zeros(0)
        groups = list(table.groupby("row").indices.items()) if len(table) else []
        features = np.array([region_features(prob[idx], scores[idx]) for _, idx in groups]).reshape(-1, 5)
        labels = np.array([truth[int(row)] for row, _ in groups], dtype=np.float64)
        keep = np.isfinite(labels)
        rule = fit_learned_combine(features[keep], labels[keep].astype(int))
        save_learned_combine(spec.run_path(stage.run), spec.name, stage.name, rule)
        fitted[stage.name] = rule
    return fitted
