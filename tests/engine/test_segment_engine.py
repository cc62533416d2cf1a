"""``segment`` through the engine: train → evaluate → predict → resume on phantoms (Python and CLI), and on
FracAtlas polygons when the shared data is there."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage

from osteon.engine import Predictor, evaluate, train
from osteon.engine.checkpoint import load_model_file

FAST = {"model": "tiny_unet", "image_size": 64, "batch_size": 16, "lr": 1e-2, "progress": False}


@pytest.fixture(scope="module")
def segment_run(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seg") / "run"
    train(task="segment", data=str(phantom_dataset), epochs=2, out=str(out), **FAST)
    return out


def test_run_records_the_segmentation_set_up(segment_run: Path) -> None:
    meta = load_model_file(segment_run / "model.pt")["meta"]
    task = meta["task"]
    assert task["name"] == "segment" and task["target"] == "mask" and task["class_names"] == ["background", "1"]
    assert task["extra"]["source"] == "mask" and task["extra"]["image_size"] == 64
    assert meta["monitor"] == {"name": "Dice", "direction": "max", "key": "val/score"}
    logged = pd.read_csv(segment_run / "logs" / "metrics.csv")["val/score"].dropna()
    assert len(logged) == 2 and logged.between(0, 1).all()  # validation mean Dice per epoch
    val = pd.read_csv(segment_run / "predictions_val.csv", dtype={"truth": "string"})
    assert {"dice_1", "iou_1", "hd95_1", "area_px_1", "components_1", "bbox_1"} <= set(val.columns)


def test_evaluate_reports_dice_iou_hd95_with_cis_and_saves_masks(segment_run: Path) -> None:
    result = evaluate(segment_run, split="test", n_resamples=100, progress=False)
    for key in ("dice", "iou", "hd95", "asd", "detection_rate", "false_positive_rate"):
        ci = result[key]
        assert {"estimate", "low", "high"} <= set(ci), key
        if ci["estimate"] is not None and np.isfinite(ci["estimate"]):
            assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert result["distance_unit"] == "px" and result["ci"]["resampled_by"] == "patient"
    table = pd.read_csv(segment_run / "predictions_test.csv", dtype={"truth": "string"})
    manifest = pd.read_csv(segment_run / "manifest.csv")
    assert len(table) == int((manifest["split"] == "test").sum()) == result["n_images"]
    assert result["dice"]["estimate"] == pytest.approx(table["dice_1"].mean())
    assert result["n_truth_positive"] == int((table["truth"] != "background").sum())
    for _, row in table.iterrows():
        mask = np.asarray(PILImage.open(row["mask_file"]))
        assert mask.shape == (row["height"], row["width"]) and set(np.unique(mask)) <= {0, 1}
        assert int((mask == 1).sum()) == row["area_px_1"]
    assert json.loads((segment_run / "metrics.json").read_text())["test"]["task"] == "segment"

    from osteon.report.overlays import write_overlay_figure

    figure = write_overlay_figure(segment_run, result)
    assert figure is not None and figure.is_file() and figure.stat().st_size > 5000


def test_evaluate_also_scores_the_masks_on_the_input_grid(segment_run: Path) -> None:
    """Dice on the letterboxed grid the model saw (as papers that score resized masks do), beside original pixels."""
    result = evaluate(segment_run, split="test", n_resamples=50, progress=False)
    table = pd.read_csv(segment_run / "predictions_test.csv", dtype={"truth": "string"})
    assert result["dice_input_grid"]["estimate"] == pytest.approx(table["dice_grid_1"].mean())
    assert set(result["input_grid"]["per_class"]["1"]) == {"dice", "iou", "dice_positive", "iou_positive"}
    scale = (64 / np.maximum(table["height"], table["width"])) ** 2  # original pixels → 64-px input pixels
    positive = table["truth_area_px_1"] > 0
    ratio = table.loc[positive, "truth_pixels_grid_1"] / (table.loc[positive, "truth_area_px_1"] * scale[positive])
    assert positive.any() and ratio.between(0.5, 2.0).all()  # the same structures, counted on the smaller grid
    assert (table.loc[~positive, "truth_pixels_grid_1"] == 0).all()


def test_predictor_returns_masks_in_original_pixels(segment_run: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_run(segment_run)
    manifest = pd.read_csv(segment_run / "manifest.csv")
    source = segment_run / manifest["image"].iloc[0]
    wide = tmp_path / "wide.png"  # a non-square image the model never saw at this size
    array = np.asarray(PILImage.open(source))
    PILImage.fromarray(np.concatenate([array, array[:, ::-1]], axis=1)).save(wide)
    prediction = predictor.predict_image(wide)
    assert prediction.mask.shape == (64, 128) and prediction.probabilities.shape == (1, 64, 128)
    assert prediction.class_names == ("background", "1")
    frame = predictor.predict_paths([source, wide], progress=False, out_dir=tmp_path / "outputs")
    assert list(frame["height"]) == [64, 64] and list(frame["width"]) == [64, 128]
    assert all(Path(p).is_file() for p in frame["mask_file"])
    assert "truth" not in frame or frame["truth"].isna().all()  # plain files have no ground truth


def test_resume_continues_from_the_last_epoch(segment_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "resumed"
    shutil.copytree(segment_run, copy)
    train(resume=copy, epochs=3, progress=False)
    assert json.loads((copy / "training.json").read_text())["epochs"] == 3
    import torch

    last = torch.load(copy / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2  # epochs 0 and 1 came from the original run, epoch 2 from the resumed one
    assert Predictor.from_run(copy).task.state.extra == Predictor.from_run(segment_run).task.state.extra


def test_cli_train_evaluate_predict(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app
    from osteon.data.phantom import make_phantom_dataset

    make_phantom_dataset(tmp_path / "ph", images=16, size=64, seed=3)
    runner = CliRunner()
    out = tmp_path / "run"
    args = [
        "train",
        "--task",
        "segment",
        "--data",
        str(tmp_path / "ph" / "manifest.csv"),
        "--model",
        "tiny_unet",
        "--epochs",
        "1",
        "--image-size",
        "64",
        "--patch-size",
        "32",
        "--batch-size",
        "8",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(out), "--split", "test", "--json", "--n-resamples", "50"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout[result.stdout.index("{") :])
    assert {"dice", "iou", "hd95"} <= set(metrics) and metrics["inference"]["window"] == 32
    result = runner.invoke(
        app, ["predict", str(out), str(tmp_path / "ph" / "images"), "--out", str(tmp_path / "p.csv")]
    )
    assert result.exit_code == 0, result.output
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert len(predicted) == 16 and all(Path(p).is_file() for p in predicted["mask_file"])
    bad = runner.invoke(app, [*args[:-1], str(tmp_path / "other"), "--model", "resnet18"])
    assert bad.exit_code != 0 and "unet" in bad.output  # a classification backbone is not a segmentation model


@pytest.mark.shared_data
def test_fracatlas_polygons_follow_the_authors_split(shared_data: Path, tmp_path: Path) -> None:
    from osteon.data.adapters import load_dataset
    from osteon.data.manifest import Manifest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = load_dataset(shared_data / "fracatlas")
    fractured = full.frame[full.frame["split"].notna()]
    picked = pd.concat(
        [fractured[fractured["split"] == s].head(n) for s, n in (("train", 10), ("val", 4), ("test", 4))]
    )
    subset = Manifest(picked, root=full.root, name="fracatlas_subset")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        subset.save(tmp_path / "manifest.csv")
        run = train(task="segment", data=str(tmp_path / "manifest.csv"), epochs=1, out=str(tmp_path / "run"), **FAST)
        result = evaluate(run.path, split="test", n_resamples=50, progress=False)
    state = json.loads((run.path / "state.json").read_text())
    assert state["split"]["source"] == "dataset"  # the authors' split, not a generated one
    assert state["task"]["class_names"] == ["background", "fractured"] and state["task"]["target"] == "polygons"
    table = pd.read_csv(run.path / "predictions_test.csv", dtype={"truth": "string"})
    assert (table["truth"] == "fractured").all() and (table["truth_area_px_fractured"] > 0).all()
    by_name = picked.assign(name=[Path(p).name for p in picked["image"]]).set_index("name")
    widths = by_name.loc[[Path(p).name for p in table["image"]], "width"]
    assert table["width"].tolist() == widths.astype(int).tolist()  # masks in the COCO (original) pixel grid
    assert result["n_truth_positive"] == 4
