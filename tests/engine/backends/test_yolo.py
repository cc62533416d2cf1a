"""The optional YOLO backend: Manifest → YOLO files → Ultralytics training (offline) → predictions back."""

from __future__ import annotations

import importlib.util
import json
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from osteon.data.adapters import load_dataset
from osteon.data.boxes import parse_boxes, to_original_space
from osteon.data.datasets import decode_images
from osteon.data.manifest import Manifest
from osteon.data.transforms import Preprocessing

pytestmark = [
    pytest.mark.filterwarnings("ignore"),
    pytest.mark.skipif(
        importlib.util.find_spec("ultralytics") is None,
        reason="the optional 'yolo' extra (Ultralytics, AGPL-3.0) is not installed: pip install 'osteon[yolo]'",
    ),
]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.data.phantom import make_phantom_dataset

    out = tmp_path_factory.mktemp("yolo_phantom")
    make_phantom_dataset(out, images=24, size=72, seed=5)
    return out / "manifest.csv"


@pytest.fixture(scope="module")
def no_network() -> object:
    """Any socket connection or DNS lookup during the YOLO run is recorded and refused."""
    calls: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise OSError("network access is not allowed in this test")

    patch = pytest.MonkeyPatch()
    patch.setattr(socket.socket, "connect", refuse)
    patch.setattr(socket, "getaddrinfo", refuse)
    patch.setattr(socket, "create_connection", refuse)
    yield calls
    patch.undo()


@pytest.fixture(scope="module")
def yolo_run(phantoms: Path, no_network: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.cli.main import app

    out = tmp_path_factory.mktemp("runs") / "yolo"
    args = ["train", "--task", "detect", "--backend", "yolo", "--data", str(phantoms), "--epochs", "2"]
    result = CliRunner().invoke(app, [*args, "--image-size", "64", "--batch-size", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert no_network == [], f"Ultralytics tried the network: {no_network}"
    return out


def test_manifest_to_yolo_files_and_back(phantoms: Path, tmp_path: Path) -> None:
    from osteon.engine.backends.yolo import write_yolo_dataset

    manifest = Manifest.load(phantoms)
    prep = Preprocessing(image_size=48)
    data_yaml = write_yolo_dataset(manifest, tmp_path / "ds", class_names=["fracture"], prep=prep)
    spec = yaml.safe_load(data_yaml.read_text())
    assert spec["names"] == {0: "fracture"} and spec["train"] == "images/train"
    # read the written files back with Osteon's own YOLO adapter; boxes come out in the 48-px letterboxed space
    written = load_dataset(tmp_path / "ds", format="yolo", class_names=["fracture"])
    rows = pd.read_csv(tmp_path / "ds" / "rows.csv")
    assert len(written) == len(rows) == int(manifest.frame["split"].isin(["train", "val"]).sum())
    by_file = written.frame.set_index("image")["boxes"]
    decoded = decode_images(manifest.paths_of(rows["row"].to_numpy()), prep, progress=False)
    n_boxes = 0
    for k, (file, row) in enumerate(zip(rows["file"], rows["row"], strict=True)):
        back = parse_boxes(by_file[f"images/{file}"], class_index={"fracture": 0})
        original = parse_boxes(manifest.frame.at[row, "boxes"], class_index={"fracture": 0})
        np.testing.assert_allclose(to_original_space(back.boxes, decoded.geometry[k]), original.boxes, atol=0.05)
        n_boxes += len(original)
    assert n_boxes > 0
    assert (tmp_path / "ds" / "labels" / "train").is_dir()


def test_yolo_run_is_an_osteon_run(yolo_run: Path) -> None:
    from osteon.engine import Predictor, evaluate

    plan = json.loads((yolo_run / "plan.json").read_text())
    assert plan["backend"] == "yolo" and plan["architecture"] == "yolov8n" and plan["anchor_sizes"] == []
    assert (yolo_run / "yolo" / "train" / "weights" / "best.pt").is_file() and (yolo_run / "model.pt").is_file()
    # finished through the engine's one export path: model meta, validation table, training record
    from osteon.engine.checkpoint import load_model_file

    meta = load_model_file(yolo_run / "model.pt")["meta"]
    assert meta["monitor"]["name"] == "mAP@0.5" and meta["selected_by"].startswith("ultralytics fitness")
    assert not Path(meta["best_checkpoint"]).is_absolute()
    training = json.loads((yolo_run / "training.json").read_text())
    assert training["backend"] == "yolo" and training["monitor"]["name"] == "mAP@0.5" and training["epochs"] == 2
    assert (yolo_run / "predictions_val.csv").is_file()
    report = evaluate(yolo_run, split="test", n_resamples=50, progress=False)
    assert report["backend"] == "yolo" and {"map50", "map50_95", "froc", "image_auc"} <= set(report)
    assert Predictor.from_run(yolo_run).predict_image(next((yolo_run.parent).rglob("*.png"))).boxes_xyxy.ndim == 2


def test_osteon_reads_back_what_ultralytics_predicts(yolo_run: Path, no_network: list) -> None:
    """Osteon's YOLO wrapper on Osteon's input gives Ultralytics' own predictions on the written PNG."""
    from osteon.engine import Predictor
    from osteon.engine.backends.yolo import offline_ultralytics
    from osteon.models.detection import YoloDetector

    predictor = Predictor.from_run(yolo_run)
    spec = replace(predictor.task.spec, score_threshold=0.001)
    wrapper = YoloDetector(spec)
    wrapper.load_state_dict(predictor.model.state_dict())
    wrapper.eval()
    png = sorted((yolo_run / "yolo" / "dataset" / "images" / "val").glob("*.png"))[0]
    unit = np.asarray(Image.open(png), dtype=np.float32) / 255
    x = (torch.from_numpy(unit)[None, None] - spec.input_mean) / spec.input_std
    with torch.inference_mode():
        ours = wrapper(x)[0]
    with offline_ultralytics() as ultralytics:
        model = ultralytics.YOLO(str(yolo_run / "yolo" / "train" / "weights" / "best.pt"))
        theirs = model.predict(str(png), imgsz=64, conf=0.001, iou=spec.nms_iou, max_det=100, verbose=False)[0]
    assert len(ours["boxes"]) == len(theirs.boxes) > 0
    torch.testing.assert_close(ours["boxes"][:10], theirs.boxes.xyxy[:10].float(), atol=0.5, rtol=0)
    torch.testing.assert_close(ours["scores"][:10], theirs.boxes.conf[:10].float(), atol=0.02, rtol=0)
    assert no_network == []


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from osteon.engine.backends.yolo import require_ultralytics
    from osteon.errors import ConfigError

    real_import = builtins.__import__

    def no_ultralytics(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("ultralytics"):
            raise ImportError("No module named 'ultralytics'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ultralytics)
    with pytest.raises(ConfigError, match=r"osteon\[yolo\]"):
        require_ultralytics()
