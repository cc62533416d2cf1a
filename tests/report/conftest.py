"""Run directories for report tests: synthetic ones written file by file (fast, controlled), and a trained one."""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from osteon.data.manifest import Manifest
from osteon.data.splits import save_split_file
from osteon.engine.config import TrainConfig
from osteon.engine.rundir import RunDir
from osteon.tasks import TaskState, build_task

SPLIT_SIZES = {"train": 60, "val": 20, "test": 80}


def make_dataset(root: Path, *, task: str = "classify", seed: int = 0, shortcut: bool = False) -> Path:
    """Tiny PNGs + manifest.csv with split, patient ids, body part and (optionally) a label-revealing covariate."""
    rng = np.random.default_rng(seed)
    rows = []
    (root / "images").mkdir(parents=True, exist_ok=True)
    i = 0
    for split, size in SPLIT_SIZES.items():
        for _ in range(size):
            path = root / "images" / f"img{i:04d}.png"
            Image.fromarray(rng.integers(0, 255, (16, 20), dtype=np.uint8)).save(path)
            row = {
                "image": f"images/{path.name}",
                "patient_id": f"p{i // 2}",
                "split": split,
                "body_part": ["hand", "leg"][i % 2],
                "sex": ["F", "M"][(i // 3) % 2],
            }
            if task in ("classify", "segment", "detect"):
                row["label"] = str(int(rng.random() < 0.5))
            elif task == "grade":
                row["label"] = str(i % 5)
            else:
                row["target"] = float(rng.normal(10, 3))
            if task == "detect":  # a box on the positive images, "[]" (no object) on the others
                box = [{"xyxy": [2, 3, 12, 13], "label": "fracture"}] if row["label"] == "1" else []
                row["boxes"] = json.dumps(box)
            rows.append(row)
            i += 1
    frame = pd.DataFrame(rows)
    # patients must not straddle splits: regroup ids inside each split
    frame["patient_id"] = [f"{s}-{pid}" for s, pid in zip(frame["split"], frame["patient_id"], strict=True)]
    if shortcut:  # like FracAtlas: hardware in many positives, almost no negative
        positives = np.flatnonzero(frame["label"] == "1")
        negatives = np.flatnonzero(frame["label"] == "0")
        frame["hardware"] = "0"
        frame.loc[positives[::3], "hardware"] = "1"
        frame.loc[negatives[:1], "hardware"] = "1"
    frame.to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def make_run(
    data: Path, out: Path, *, task: str = "classify", quality: float = 2.0, seed: int = 0, external: bool = False
) -> Path:
    """A finished, evaluated run directory for the dataset at ``data``, with synthetic but consistent predictions.

    ``quality`` scales how far scores follow the truth (0: chance). Files follow engine/rundir.py.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = Manifest.load(data)
    frame = manifest.frame
    run = RunDir.create(out)
    if task == "classify":
        state = TaskState("classify", "label", ["0", "1"], "1", False, "ce")
    elif task == "grade":
        state = TaskState("grade", "label", ["0", "1", "2", "3", "4"], None, False, "corn")
    elif task == "segment":
        state = TaskState(
            "segment",
            "mask",
            ["background", "1"],
            None,
            False,
            "dice_ce",
            {"source": "mask", "mask_values": [0, 1], "patch_size": None, "image_size": 32},
        )
    elif task == "detect":
        state = TaskState("detect", "boxes", ["fracture"], None, False, "default")
    else:
        state = TaskState("regress", "target", [], None, False, "l1", {"mean": 10.0, "std": 3.0})
    TrainConfig(task=task, data=str(data), model="tiny_cnn", image_size=32, epochs=3, out=str(out)).save(run.config)
    manifest.save(run.manifest)
    save_split_file(manifest, frame["split"], run.splits)
    run.write_json(
        run.state,
        {
            "task": asdict(state),
            "preprocessing": {"image_size": 32, "mean": 0.5, "std": 0.25, "letterbox": True},
            "covariates": {"columns": [], "numeric": {}, "categories": {}},
            "split": {"source": "dataset", "reason": "the dataset's own split covers every image and class"},
            "dataset": {"name": manifest.name, "path": str(data.parent)},
        },
    )
    run.write_json(run.training, {"best_epoch": 1, "epochs": 3, "best_checkpoint": "best.ckpt"})
    run.logs.mkdir()
    pd.DataFrame(
        {
            "epoch": [0, 0, 1, 1, 2, 2],
            "step": [1, 1, 2, 2, 3, 3],
            "train/loss": [0.7, None, 0.6, None, 0.55, None],
            "val/loss": [None, 0.68, None, 0.62, None, 0.63],
            "val/score": [None, 0.6, None, 0.7, None, 0.69],
        }
    ).to_csv(run.logs / "metrics.csv", index=False)
    if task == "classify":
        run.write_json(run.operating_point, {"threshold": 0.5, "method": "youden", "chosen_on": "val", "n": 20})
    evaluate_synthetic(run, manifest, build_task(state), "test", quality=quality, seed=seed)
    if external:
        evaluate_synthetic(run, manifest, build_task(state), "other-test", quality=quality, seed=seed + 1)
    return run.path


def evaluate_synthetic(run: RunDir, manifest: Manifest, task, key: str, *, quality: float, seed: int) -> None:
    """What ``osteon evaluate`` writes, from synthetic scores: predictions_<key>.csv and metrics.json[key]."""
    rng = np.random.default_rng(seed)
    rows = manifest.frame[manifest.frame["split"] == "test"].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "image": [str(manifest.resolve(p)) for p in rows["image"]],
            "patient_id": rows["patient_id"],
            "split": rows["split"],
        }
    )
    name = task.state.name
    if name == "classify":
        y = (rows["label"] == "1").to_numpy(int)
        p1 = 1 / (1 + np.exp(-(quality * (y - 0.5) * 2 + rng.normal(0, 1, len(y)))))
        frame["truth"] = rows["label"].astype(str)
        frame["prob_0"], frame["prob_1"] = 1 - p1, p1
        frame["prediction"] = np.where(p1 >= 0.5, "1", "0")
    elif name == "grade":
        y = rows["label"].astype(int).to_numpy()
        logits = -((np.arange(5)[None] - y[:, None]) ** 2) * quality * 0.5 + rng.normal(0, 1, (len(y), 5))
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        frame["truth"] = rows["label"].astype(str)
        for k in range(5):
            frame[f"prob_{k}"] = proba[:, k]
        frame["prediction"] = proba.argmax(axis=1).astype(str)
        frame["expected_grade"] = proba @ np.arange(5)
    elif name == "segment":  # the per-image columns SegmentationTask.predict_rows writes
        y = (rows["label"] == "1").to_numpy()
        dice = np.clip(rng.normal(0.4 + 0.1 * quality, 0.15, len(y)), 0, 1)
        frame["truth"] = np.where(y, "1", "background")
        frame["prediction"] = frame["truth"]
        truth_px = np.where(y, 40.0, 0.0)
        for column, values in (
            ("dice_1", np.where(y, dice, 1.0)),
            ("iou_1", np.where(y, dice / (2 - dice), 1.0)),
            ("hd95_1", np.where(y, 3.0, np.nan)),
            ("asd_1", np.where(y, 1.0, np.nan)),
            ("truth_area_px_1", truth_px),
            ("area_px_1", truth_px),
            ("overlap_px_1", truth_px * dice),
        ):
            frame[column] = values
        frame["spacing_row"] = frame["spacing_col"] = np.nan
    elif name == "detect":  # the columns DetectionTask.predict_rows writes
        y = rows["boxes"].map(lambda v: len(json.loads(v)) > 0).to_numpy()
        score = 1 / (1 + np.exp(-(quality * (y - 0.5) * 2 + rng.normal(0, 1, len(y)))))
        frame["truth"] = rows["boxes"].to_numpy()
        frame["pred_boxes"] = [
            json.dumps([{"xyxy": [2, 3, 12, 13], "label": "fracture", "score": float(v)}]) for v in score
        ]
        frame["n_boxes"], frame["max_score"] = 1, score
    else:
        truth = rows["target"].to_numpy(float)
        frame["truth"] = truth
        frame["prediction"] = truth + rng.normal(0, 3 / max(quality, 0.1), len(truth))
    frame["error"] = ""
    point = run.read_json(run.operating_point) or None
    result = task.evaluate(frame, operating_point=point, n_resamples=100, seed=0)
    result["kind"] = result.pop("task", name)
    result = {
        "split": "test",
        "data": f"synthetic ({key})",
        "task": name,
        "n_images": len(frame),
        "n_patients": int(frame["patient_id"].nunique()),
        "n_unreadable": 0,
        "n_unlabelled": 0,
        "predictions_file": run.predictions(key).name,
        "ci": {
            "method": "percentile bootstrap",
            "resampled_by": "patient",
            "n_resamples": 100,
            "confidence": 0.95,
            "seed": 0,
        },
        **result,
    }
    frame.to_csv(run.predictions(key), index=False)
    run.update_metrics(key, result)


@pytest.fixture
def classify_run(tmp_path: Path) -> Path:
    return make_run(make_dataset(tmp_path / "data"), tmp_path / "run")


@pytest.fixture
def shortcut_run(tmp_path: Path) -> Path:
    return make_run(make_dataset(tmp_path / "data", shortcut=True), tmp_path / "run")


@pytest.fixture
def evaluated_classifier(trained_classifier: Path, tmp_path: Path) -> Path:
    """A copy of the phantom classifier run (tests/conftest.py), evaluated on its test split."""
    from osteon.engine import evaluate

    run = trained_classifier.parent / f"{trained_classifier.name}-{tmp_path.name}"  # a sibling: relative paths hold
    shutil.copytree(trained_classifier, run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(run, split="test", n_resamples=100, progress=False)
    return run
