"""Detection through the engine and the CLI on phantoms: train, resume, evaluate, predict (images, video)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.engine import Predictor, train
from osteon.engine.checkpoint import load_model_file
from osteon.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore")
runner = CliRunner()


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.data.phantom import make_phantom_dataset

    out = tmp_path_factory.mktemp("det_phantom")
    make_phantom_dataset(out, images=28, size=64, seed=3)
    return out / "manifest.csv"


@pytest.fixture(scope="module")
def detect_run(phantoms: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI contract: ``osteon train --task detect --model retinanet --encoder resnet18`` (1 epoch)."""
    out = tmp_path_factory.mktemp("runs") / "det"
    args = ["train", "--task", "detect", "--data", str(phantoms), "--model", "retinanet", "--encoder", "resnet18"]
    args += ["--epochs", "1", "--image-size", "64", "--batch-size", "8", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_run_carries_its_plan(detect_run: Path) -> None:
    plan = json.loads((detect_run / "plan.json").read_text())
    assert plan["architecture"] == "retinanet" and plan["encoder"] == "resnet18" and plan["class_names"] == ["fracture"]
    assert len(plan["anchor_sizes"]) == 5 and all(len(level) == 3 for level in plan["anchor_sizes"])
    sides = plan["box_statistics"]["side_px_percentiles"]
    assert plan["anchor_sizes"][0][0] == pytest.approx(np.clip(sides["5"], 4, 32), abs=0.1)  # smallest anchor ≈ p5
    meta = load_model_file(detect_run / "model.pt")["meta"]
    assert meta["task"]["extra"]["plan"] == plan  # the checkpoint rebuilds the same detector
    # the box scale chosen on the validation predictions is in the run's state and in the model
    calibration = meta["task"]["extra"]["calibration"]
    assert calibration["chosen_on"] == "val" and calibration["box_scale"] in [
        float(k) for k in calibration["map50_by_scale"]
    ]
    assert json.loads((detect_run / "state.json").read_text())["task"]["extra"]["calibration"] == calibration
    val = pd.read_csv(detect_run / "predictions_val.csv")
    assert {"truth", "pred_boxes", "n_boxes", "max_score"} <= set(val.columns)


def test_resume_continues_from_the_last_epoch(detect_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "resumed"
    shutil.copytree(detect_run, copy)
    before = torch.load(copy / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["epoch"]
    train(resume=copy, epochs=2, progress=False)
    after = torch.load(copy / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert (before, after["epoch"]) == (0, 1)  # the epoch index of the last checkpoint: one more epoch trained
    assert json.loads((copy / "training.json").read_text())["epochs"] == 2
    assert Predictor.from_run(copy).task.state.extra["plan"]["architecture"] == "retinanet"


def test_evaluate_reports_map_froc_and_auc_with_cis(detect_run: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(detect_run), "--split", "test", "--json", "--n-resamples", "100"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("map50", "map50_95", "image_auc"):
        assert {"estimate", "low", "high"} <= set(report[key])
    assert set(report["froc"]["sensitivity_at_fp_per_image"]) == {"0.125", "0.25", "0.5", "1", "2", "4", "8"}
    assert report["froc"]["hit_criterion"].startswith("IoU >= 0.5")
    frame = pd.read_csv(detect_run / "predictions_test.csv")
    assert len(frame) == report["n_images"]
    for _, row in frame.iterrows():  # predictions are in the original image's pixels
        for box in json.loads(row["pred_boxes"]):
            x1, y1, x2, y2 = box["xyxy"]
            assert 0 <= x1 < x2 <= row["width"] and 0 <= y1 < y2 <= row["height"] and 0 <= box["score"] <= 1
    assert not (detect_run / "outputs_test").exists()  # the task writes no files; boxes live in the table


def test_predict_images_video_and_python(detect_run: Path, phantoms: Path, tmp_path: Path) -> None:
    from osteon.io import read_image, to_grayscale_float
    from osteon.io.video import write_video

    images = sorted((phantoms.parent / "images").glob("*.png"))[:6]
    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(detect_run), *map(str, images), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 6 and "pred_boxes" in table

    frames = [to_grayscale_float(read_image(p)) for p in images]
    clip = write_video(tmp_path / "clip.mp4", frames, fps=5)
    video_out = tmp_path / "video.csv"
    result = runner.invoke(app, ["predict", str(detect_run), str(clip), "--out", str(video_out)])
    assert result.exit_code == 0, result.output
    assert "frames/s" in result.output
    per_frame = pd.read_csv(video_out)
    assert per_frame["frame"].tolist() == list(range(6)) and per_frame["error"].fillna("").eq("").all()

    predictor = Predictor.from_run(detect_run)
    single = predictor.predict_image(images[0])
    assert single.boxes_xyxy.shape[1] == 4 and (np.diff(single.scores) <= 0).all()
    assert (single.boxes_xyxy[:, 2:] <= 64).all()
    # a frame predicts like the same pixels read from the file (video compression aside: same array here)
    from_array = predictor.predict_frames([frames[0]], ["f0"])
    assert from_array["pred_boxes"].iloc[0] == table["pred_boxes"].iloc[0]


def test_detect_config_errors(phantoms: Path, tmp_path: Path) -> None:
    common = {"task": "detect", "data": str(phantoms), "epochs": 1, "image_size": 64, "progress": False}
    with pytest.raises(ConfigError, match="YOLO model"):
        train(model="yolov8n", out=str(tmp_path / "a"), **common)
    with pytest.raises(ConfigError, match="own losses"):
        train(model="retinanet", loss="ce", out=str(tmp_path / "b"), **common)
    with pytest.raises(ConfigError, match=r"'mask' is not valid JSON.*--target"):
        train(model="retinanet", target="mask", out=str(tmp_path / "c"), **common)
    with pytest.raises(ConfigError, match="no 'bones' column"):
        train(model="retinanet", target="bones", out=str(tmp_path / "d"), **common)
