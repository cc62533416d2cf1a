"""The keypoints task end to end on landmark phantoms: train, evaluate, predict, explain, report (CLI and Python)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osteon.errors import ConfigError


@pytest.fixture(scope="module")
def landmark_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.data.phantom_landmarks import make_landmark_dataset

    out = tmp_path_factory.mktemp("landmarks")
    make_landmark_dataset(out, images=64, size=64, seed=0)
    return out / "manifest.csv"


@pytest.fixture(scope="module")
def keypoint_run(landmark_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.engine import train

    out = tmp_path_factory.mktemp("runs") / "keypoints"
    train(
        task="keypoints",
        data=str(landmark_data),
        model="tiny_unet",
        epochs=15,
        image_size=64,
        batch_size=8,
        lr=3e-3,
        out=str(out),
        progress=False,
    )
    return out


@pytest.mark.slow
def test_phantom_landmarks_and_cobb_angles_are_recovered(keypoint_run: Path) -> None:
    """The drawn landmarks are found to about a pixel and the Cobb angles to a few degrees (test split)."""
    from osteon.engine import evaluate

    result = evaluate(keypoint_run, split="test")
    assert result["task"] == "keypoints" and result["n"] == 9
    assert result["mre_px"]["estimate"] < 2.0, result["mre_px"]
    assert result["mre_px"]["low"] <= result["mre_px"]["estimate"] <= result["mre_px"]["high"]
    assert result["mre_mm"]["estimate"] == pytest.approx(result["mre_px"]["estimate"] / 2, rel=1e-6)  # 0.5 mm px
    assert result["sdr"]["4mm"]["estimate"] > 0.8
    cobb = result["measurements"]["cobb_angle"]
    assert cobb["mae"]["estimate"] < 4.0, cobb["mae"]
    assert "loa_low" in cobb["bland_altman"]
    # missing points are not scored: one test image lacks lower_endplate_right
    assert result["per_point"]["lower_endplate_right"]["n"] == 8


@pytest.mark.slow
def test_predictor_explain_and_report(keypoint_run: Path, landmark_data: Path, tmp_path: Path) -> None:
    from osteon.engine import Predictor
    from osteon.explain import explain_image
    from osteon.explain.heatmaps import landmark_heatmaps

    predictor = Predictor.from_run(keypoint_run)
    frame = pd.read_csv(landmark_data)
    image = landmark_data.parent / frame["image"].iloc[-1]
    prediction = predictor.predict_image(image)
    assert prediction.points.shape == (4, 2) and prediction.heatmaps is not None
    assert "cobb_angle" in prediction.measurements and "landmark" in prediction.summary()
    heat = landmark_heatmaps(predictor, image, out_dir=tmp_path)
    assert heat.maps.shape == (4, 64, 64) and heat.overlay is not None and heat.overlay.is_file()
    # the heat map peaks where the point was decoded
    peak = np.unravel_index(heat.maps[0].argmax(), heat.maps[0].shape)
    assert abs(peak[1] + 0.5 - heat.points[0, 0]) <= 1.5 and abs(peak[0] + 0.5 - heat.points[0, 1]) <= 1.5
    explanation = explain_image(predictor, image, target_class="upper_endplate_left")
    assert explanation.map.shape == (64, 64) and explanation.target == "upper_endplate_left"
    table = predictor.predict_paths([image], progress=False)
    assert {"prediction", "x_upper_endplate_left", "cobb_angle"} <= set(table.columns)


@pytest.mark.slow
def test_cli_evaluate_and_report(keypoint_run: Path) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(keypoint_run), "--split", "val"])
    assert result.exit_code == 0, result.output
    assert (keypoint_run / "figures" / "val_landmarks.png").is_file()
    assert (keypoint_run / "figures" / "val_cobb_angle_bland_altman.png").is_file()
    result = runner.invoke(app, ["report", str(keypoint_run)])
    assert result.exit_code == 0, result.output
    html = (keypoint_run / "report.html").read_text()
    assert "MRE px" in html and "cobb_angle" in html


def test_keypoints_refuses_bad_configs(landmark_data: Path, tmp_path: Path) -> None:
    from osteon.engine import train

    with pytest.raises(ConfigError, match="heat-map"):
        train(
            task="keypoints",
            data=str(landmark_data),
            model="resnet18",
            image_size=64,
            out=str(tmp_path / "a"),
            progress=False,
        )
    with pytest.raises(ConfigError, match="hflip"):
        train(
            task="keypoints",
            data=str(landmark_data),
            model="tiny_unet",
            hflip=True,
            image_size=64,
            out=str(tmp_path / "b"),
            progress=False,
        )
    bad = pd.read_csv(landmark_data)
    bad["keypoints"] = "[]"
    bad.to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ConfigError, match="no landmarks"):
        train(
            task="keypoints",
            data=str(tmp_path / "empty.csv"),
            model="tiny_unet",
            image_size=64,
            out=str(tmp_path / "c"),
            progress=False,
        )
