"""The detection benchmark's intervals of Osteon's ratio to the strongest rival (``benchmarks/_detection_ratio.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _detection_ratio import ratio_intervals, ratio_text

from osteon.data.boxes import ImageBoxes
from osteon.metrics import coco_map_scores

MODELS = ("osteon centernet-x", "yolov8n", "yolo26n")
N_IMAGES = 30


def _boxes(records: list[tuple[list[float], float | None]]) -> str:
    return json.dumps([{"xyxy": b, "label": "fx", **({"score": s} if s is not None else {})} for b, s in records])


def _seed_folder(root: Path, seed: int, hits: dict[str, float]) -> dict:
    """A seed folder with one run per model; a model finds each fracture with probability ``hits[model]``."""
    rng = np.random.default_rng(seed)
    out = root / f"seed{seed}"
    rows = []
    for model in MODELS:
        run = out / ("osteon" if model.startswith("osteon") else model)
        run.mkdir(parents=True)
        (run / "state.json").write_text(json.dumps({"task": {"class_names": ["fx"]}}))
        images = [f"/data/img{i:02d}.jpg" for i in range(N_IMAGES)]
        truth = [_boxes([([10.0, 10, 30, 30], None)]) for _ in images]
        found = rng.random(N_IMAGES) < hits[model]
        preds = [
            _boxes([([10.0, 10, 30, 30] if f else [60.0, 60, 80, 80], float(rng.uniform(0.2, 0.9)))]) for f in found
        ]
        frame = pd.DataFrame({"image": images, "truth": truth, "pred_boxes": preds})
        frame.sample(frac=1.0, random_state=seed).to_csv(run / "predictions_test.csv", index=False)  # any row order
        rows.append({"model": model})
    return {"out": str(out), "recipe": {"seed": seed}, "rows": rows}


def _map50(run: Path) -> float:
    """The run's test mAP@0.5 by pycocotools, computed apart from the module under test."""
    frame = pd.read_csv(run / "predictions_test.csv")
    truth, preds = [], []
    for value in frame["pred_boxes"]:
        (record,) = json.loads(value)
        truth.append(ImageBoxes(np.array([[10.0, 10, 30, 30]]), np.array([0])))
        preds.append(ImageBoxes(np.array([record["xyxy"]]), np.array([0]), np.array([record["score"]])))
    return coco_map_scores(truth, preds, n_classes=1)["map50"]


def test_each_seeds_ratio_is_osteons_map_over_the_strongest_rivals(tmp_path: Path) -> None:
    hits = {"osteon centernet-x": 0.8, "yolov8n": 0.3, "yolo26n": 0.2}
    summaries = [_seed_folder(tmp_path, seed, hits) for seed in (0, 1)]
    result = ratio_intervals(summaries, n_resamples=300)
    assert result is not None and list(result["per_seed"]) == ["0", "1"]
    means = {m: [] for m in MODELS}
    for summary in summaries:
        scores = {m: _map50(Path(summary["out"]) / ("osteon" if m.startswith("osteon") else m)) for m in MODELS}
        for m in MODELS:
            means[m].append(scores[m])
        interval = result["per_seed"][str(summary["recipe"]["seed"])]
        assert interval["estimate"] == pytest.approx(scores[MODELS[0]] / max(scores["yolov8n"], scores["yolo26n"]))
        assert 1.0 < interval["low"] < interval["estimate"] < interval["high"]
    of_means = result["of_seed_means"]
    strongest = max(np.mean(means["yolov8n"]), np.mean(means["yolo26n"]))
    assert of_means["estimate"] == pytest.approx(np.mean(means[MODELS[0]]) / strongest)
    assert of_means["low"] < of_means["estimate"] < of_means["high"] and of_means["n_resamples"] == 300
    assert ratio_text(of_means).startswith(f"{of_means['estimate']:.2f} (")


def test_without_the_seed_folders_there_is_no_interval(tmp_path: Path) -> None:
    summaries = [_seed_folder(tmp_path, 0, dict.fromkeys(MODELS, 0.5))]
    (Path(summaries[0]["out"]) / "yolo26n" / "predictions_test.csv").unlink()
    assert ratio_intervals(summaries) is None


def test_seeds_on_other_test_images_are_refused(tmp_path: Path) -> None:
    summaries = [_seed_folder(tmp_path, seed, dict.fromkeys(MODELS, 0.5)) for seed in (0, 1)]
    other = Path(summaries[1]["out"]) / "yolov8n" / "predictions_test.csv"
    frame = pd.read_csv(other)
    frame.loc[0, "image"] = "/data/elsewhere.jpg"
    frame.to_csv(other, index=False)
    with pytest.raises(SystemExit, match="not the test images"):
        ratio_intervals(summaries, n_resamples=50)


def test_an_infinite_upper_end_reads_as_infinity() -> None:
    assert ratio_text({"estimate": 4.0, "low": 1.5, "high": float("inf")}) == "4.00 (1.50–∞)"
