"""``osteon train|evaluate|predict`` through Typer's runner: the CLI contract of the engine issue."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from osteon.cli.main import app

runner = CliRunner()


def test_train_options_mirror_the_config_fields() -> None:
    import typer

    from osteon.engine.config import TrainConfig

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    flags = {opt for param in command.params for opt in param.opts}
    for name in TrainConfig.model_fields:
        assert f"--{name.replace('_', '-')}" in flags, name
    assert runner.invoke(app, ["train", "--help"]).exit_code == 0


def test_yaml_config_with_flag_override(phantom_dataset: Path, tmp_path: Path) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(
        f"task: classify\ndata: {phantom_dataset}\ntarget: fractured\nmodel: tiny_cnn\nimage_size: 32\nepochs: 5\n"
    )
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    saved = (out / "config.yaml").read_text()
    assert "epochs: 1" in saved and "image_size: 32" in saved


def test_bad_config_is_one_red_line(phantom_dataset: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "--task",
            "classify",
            "--data",
            str(phantom_dataset),
            "--model",
            "resnet81",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2
    assert "Unknown model 'resnet81'" in result.stderr and "resnet18" in result.stderr
    assert "Traceback" not in result.output


def test_evaluate_json_and_predict_csv(trained_classifier: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", str(trained_classifier), "--split", "val", "--json", "--n-resamples", "50"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "val" and 0 <= metrics["auc"]["estimate"] <= 1
    assert (trained_classifier / "figures" / "val_roc.png").is_file()
    images = pd.read_csv(trained_classifier / "manifest.csv")["image"]
    inputs = [str(trained_classifier / p) for p in images.iloc[:4]]
    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(trained_classifier), *inputs, "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert len(frame) == 4 and {"prob_0", "prob_1", "prediction", "error"} <= set(frame.columns)
    again = runner.invoke(app, ["predict", str(trained_classifier), *inputs, "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.stderr  # never overwritten silently


@pytest.mark.shared_data
def test_external_validation_header_and_dataset_options(trained_classifier: Path, tmp_path: Path) -> None:
    """Defect 9: the header says which split and how many images; the other dataset takes adapter options."""
    manifest = pd.read_csv(trained_classifier / "manifest.csv")
    other = pd.DataFrame(
        {
            "scan": [str((trained_classifier / p).resolve()) for p in manifest["image"]],
            "fractured": manifest["fractured"],
            "pid": manifest["patient_id"],
            "split": "test",
        }
    )
    other.loc[: len(other) // 2, "split"] = "train"
    path = tmp_path / "other.csv"
    other.to_csv(path, index=False)
    common = ["evaluate", str(trained_classifier), "--data", str(path), "--n-resamples", "50"]
    result = runner.invoke(app, [*common, "--image-column", "scan", "--patient-column", "pid"])
    assert result.exit_code == 0, result.output
    patients = other["pid"].nunique()
    assert f"split: all — {len(other)} images, {patients} patients" in " ".join(result.output.split())
    refused = runner.invoke(app, ["evaluate", str(trained_classifier), "--image-column", "scan"])
    assert refused.exit_code == 2 and "--data" in refused.output


def test_knee_grade_contract(shared_data: Path, tmp_path: Path) -> None:
    """The issue's smoke commands on the real knee KL data (shipped split)."""
    run = tmp_path / "knee-smoke"
    result = runner.invoke(
        app,
        [
            "train",
            "--task",
            "grade",
            "--data",
            str(shared_data / "knee_kl_chen2018"),
            "--model",
            "resnet18",
            "--epochs",
            "1",
            "--image-size",
            "64",
            "--out",
            str(run),
        ],
    )
    assert result.exit_code == 0, result.output
    state = json.loads((run / "state.json").read_text())
    assert state["split"]["source"] == "dataset"
    assert state["task"]["class_names"] == ["0", "1", "2", "3", "4"]
    result = runner.invoke(app, ["evaluate", str(run), "--split", "test", "--json", "--n-resamples", "200"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n_images"] == 242 and metrics["ci"]["resampled_by"] == "patient"
    assert metrics["qwk"]["low"] <= metrics["qwk"]["estimate"] <= metrics["qwk"]["high"]


@pytest.mark.shared_data
def test_fracatlas_fracture_contract(shared_data: Path, tmp_path: Path) -> None:
    """FracAtlas yes/no: the authors' split covers only fractures, so a duplicate-aware split is generated."""
    data = shared_data / "fracatlas"
    run = tmp_path / "fa-smoke"
    result = runner.invoke(
        app,
        [
            "train",
            "--task",
            "classify",
            "--data",
            str(data),
            "--target",
            "fractured",
            "--model",
            "resnet18",
            "--epochs",
            "1",
            "--image-size",
            "64",
            "--out",
            str(run),
        ],
    )
    assert result.exit_code == 0, result.output
    state = json.loads((run / "state.json").read_text())
    assert state["split"]["source"] == "generated"
    manifest = pd.read_csv(run / "manifest.csv")
    assert set(manifest["split"]) == {"train", "val", "test"} and len(manifest) == 974
    duplicates = [("IMG0000261", "IMG0002299", "IMG0002300"), ("IMG0000006", "IMG0002294")]
    for group in duplicates:
        sides = {manifest.loc[manifest["image"].str.contains(i), "split"].item() for i in group}
        assert len(sides) == 1, f"duplicate group {group} crosses splits: {sides}"
    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(run), str(data / "images" / "Fractured"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(out)
    assert len(preds) == 608 and preds["error"].isna().all()
