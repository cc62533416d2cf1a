"""Angle formulas against hand calculations, landmark metrics, heat-map coding and the landmark phantom."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from osteon.data.keypoints import format_keypoints, keypoint_array, parse_keypoints, point_names
from osteon.errors import ConfigError
from osteon.metrics.landmarks import landmark_report, measurement_report, radial_errors, success_rate
from osteon.metrics.measurements import (
    acetabular_index,
    cobb_angle,
    distance,
    graf_alpha,
    graf_type,
    hka_angle,
    line_angle,
    measure,
)
from osteon.models.keypoints import decode_heatmaps, gaussian_targets, heatmap_loss


# -- measurements: hand calculations ----------------------------------------------------------------------------
def test_line_angle_is_acute_and_ignores_direction() -> None:
    assert line_angle((0, 0), (1, 0), (0, 0), (1, 1)) == pytest.approx(45.0)
    assert line_angle((0, 0), (1, 0), (1, 1), (0, 0)) == pytest.approx(45.0)  # reversed direction
    assert line_angle((0, 0), (1, 0), (0, 0), (0, 1)) == pytest.approx(90.0)
    assert line_angle((0, 0), (2, 0), (5, 3), (9, 3)) == pytest.approx(0.0)


def test_cobb_angle_hand_calculation() -> None:
    # upper endplate rises 10° (tan 10° slope), lower endplate falls 15°: Cobb 25°
    t10, t15 = math.tan(math.radians(10)), math.tan(math.radians(15))
    upper = ((0.0, 0.0), (10.0, -10 * t10))
    lower = ((0.0, 50.0), (10.0, 50 + 10 * t15))
    assert cobb_angle(*upper, *lower) == pytest.approx(25.0)
    # both tilted the same way by 12°: parallel endplates, Cobb 0°
    t12 = math.tan(math.radians(12))
    assert cobb_angle((0, 0), (10, 10 * t12), (0, 40), (10, 40 + 10 * t12)) == pytest.approx(0.0, abs=1e-9)


def test_hka_angle_hand_calculation() -> None:
    assert hka_angle((0, 0), (0, 100), (0, 200)) == pytest.approx(180.0)  # straight
    # knee 10 px medial over a 100 px femur and 100 px tibia: 180 - 2*atan(10/100)
    expected = 180 - 2 * math.degrees(math.atan(10 / 100))
    assert hka_angle((0, 0), (10, 100), (0, 200)) == pytest.approx(expected)
    assert measure({"hip_centre": (0, 0), "knee_centre": (10, 100), "ankle_centre": (0, 200)})[
        "hka_deviation"
    ] == pytest.approx(180 - expected)


def test_acetabular_index_hand_calculation() -> None:
    # Hilgenreiner line horizontal; roof from the left triradiate point rises 3 up over 5 across: atan(3/5)
    left, right = (100.0, 200.0), (300.0, 200.0)
    edge = (95.0, 197.0)  # 5 px lateral (x smaller), 3 px up
    assert acetabular_index(left, right, left, edge) == pytest.approx(math.degrees(math.atan2(3, 5)))
    points = {"triradiate_left": left, "triradiate_right": right, "acetabular_edge_left": edge}
    assert measure(points)["acetabular_index_left"] == pytest.approx(math.degrees(math.atan2(3, 5)))
    assert "acetabular_index_right" not in measure(points)


def test_graf_alpha_and_type() -> None:
    # vertical baseline, bony roof at 63° from it
    roof = (math.sin(math.radians(63)) * 10, math.cos(math.radians(63)) * 10)
    alpha = graf_alpha((0, 0), (0, 20), (0, 0), roof)
    assert alpha == pytest.approx(63.0)
    assert graf_type(alpha) == "I" and graf_type(55) == "II" and graf_type(45) == "D/IIc" and graf_type(30) == "III/IV"


def test_distance_in_mm_uses_row_and_column_spacing() -> None:
    assert distance((0, 0), (3, 4)) == pytest.approx(5.0)
    assert distance((0, 0), (3, 4), spacing=(2.0, 1.0)) == pytest.approx(math.hypot(3, 8))  # y rows are 2 mm


def test_measure_with_a_missing_point_is_nan() -> None:
    values = measure(
        {
            "upper_endplate_left": (0, 0),
            "upper_endplate_right": (1, 0),
            "lower_endplate_left": (0, 5),
            "lower_endplate_right": None,
        }
    )
    assert np.isnan(values["cobb_angle"])


# -- landmark metrics -------------------------------------------------------------------------------------------
def test_radial_errors_px_mm_and_missing() -> None:
    truth = np.array([[[10.0, 10.0], [np.nan, np.nan]], [[0.0, 0.0], [5.0, 5.0]]])
    pred = np.array([[[13.0, 14.0], [1.0, 1.0]], [[0.0, 2.0], [5.0, 5.0]]])
    px, mm = radial_errors(truth, pred, spacing=[[0.5, 0.5], [2.0, 1.0]])
    assert px[0, 0] == pytest.approx(5.0) and np.isnan(px[0, 1]) and px[1, 0] == pytest.approx(2.0)
    assert mm[0, 0] == pytest.approx(2.5) and mm[1, 0] == pytest.approx(4.0)  # dy = 2 rows of 2 mm
    assert success_rate(mm, 2.5) == pytest.approx(2 / 3)


def test_landmark_report_cis_and_per_point() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 100, (30, 3, 2))
    pred = truth + rng.normal(0, 2, truth.shape)
    truth[0, 2] = np.nan
    report = landmark_report(
        truth,
        pred,
        point_names=["a", "b", "c"],
        spacing=np.full((30, 2), 0.5),
        groups=np.arange(30) // 2,
        n_resamples=200,
    )
    assert report["n_points"] == 89 and report["per_point"]["c"]["n"] == 29
    ci = report["mre_px"]
    assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert report["mre_mm"]["estimate"] == pytest.approx(ci["estimate"] / 2)
    assert set(report["sdr"]) == {"2mm", "2.5mm", "4mm"}
    assert report["sdr"]["2mm"]["estimate"] <= report["sdr"]["4mm"]["estimate"]
    assert report["bootstrap"]["unit"] == "patient" and report["bootstrap"]["n_units"] == 15


def test_measurement_report_is_bland_altman() -> None:
    ref = np.array([10.0, 20.0, 30.0, 40.0, np.nan])
    pred = np.array([12.0, 22.0, 32.0, 42.0, 5.0])
    report = measurement_report({"cobb_angle": ref}, {"cobb_angle": pred}, n_resamples=100)
    ba = report["cobb_angle"]["bland_altman"]
    assert report["cobb_angle"]["n"] == 4 and ba["mean_difference"]["estimate"] == pytest.approx(2.0)


# -- Manifest column --------------------------------------------------------------------------------------------
def test_keypoint_cells_round_trip_and_errors() -> None:
    cell = format_keypoints(["a", "b"], np.array([[1.5, 2.0], [np.nan, np.nan]]))
    assert json.loads(cell)[1]["xy"] is None
    assert parse_keypoints(cell) == {"a": (1.5, 2.0), "b": None}
    assert parse_keypoints("") is None and parse_keypoints(float("nan")) is None
    array = keypoint_array([cell, None, '[{"name": "b", "xy": [3, 4]}]'], ["a", "b"])
    assert np.isnan(array[1]).all() and array[2, 1].tolist() == [3, 4] and np.isnan(array[0, 1]).all()
    with pytest.raises(ConfigError, match="not JSON"):
        parse_keypoints("[{name: a}]")
    with pytest.raises(ConfigError, match="xy"):
        parse_keypoints('[{"name": "a", "xy": [1]}]')
    import pandas as pd

    assert point_names(pd.DataFrame({"k": [cell, '[{"name": "c", "xy": [0, 0]}]']}), "k") == ["a", "b", "c"]


# -- heat maps --------------------------------------------------------------------------------------------------
def test_gaussian_targets_decode_to_their_centres() -> None:
    points = torch.tensor([[[10.3, 20.7], [40.0, 5.5]]])
    maps = gaussian_targets(points, 48, 48, sigma=2.0)
    assert maps.shape == (1, 2, 48, 48) and torch.allclose(maps.sum((-2, -1)), torch.ones(1, 2))
    decoded, confidence, _ = decode_heatmaps(torch.log(maps))
    assert torch.allclose(decoded, points, atol=0.01)  # a parabola through a log-Gaussian is exact
    assert (confidence > 0.5).all()


def test_heatmap_loss_ignores_invisible_points() -> None:
    logits = torch.zeros(1, 2, 16, 16, requires_grad=True)
    points = torch.tensor([[[4.0, 4.0], [0.0, 0.0]]])
    loss = heatmap_loss(logits, points, torch.tensor([[True, False]]), sigma=1.0)
    loss.backward()
    assert logits.grad[0, 1].abs().sum() == 0 and logits.grad[0, 0].abs().sum() > 0


# -- phantom ----------------------------------------------------------------------------------------------------
def test_landmark_phantom_angles_are_recovered_from_its_points(tmp_path: Path) -> None:
    from osteon.data.phantom_landmarks import SPINE_POINTS, make_landmark_dataset

    manifest = make_landmark_dataset(tmp_path, images=10, size=48, seed=1)
    frame = manifest.frame
    assert set(frame["split"]) == {"train", "val", "test"}
    points = keypoint_array(frame["keypoints"].tolist(), list(SPINE_POINTS))
    assert np.isnan(points[9, 3]).all() and np.isfinite(points[:9]).all()
    for i in range(9):
        angle = measure(dict(zip(SPINE_POINTS, points[i], strict=True)))["cobb_angle"]
        assert angle == pytest.approx(frame["cobb_angle"].iloc[i], abs=0.02)  # rounding of the JSON to 1e-3 px
    # the landmark sits on a bone corner: brighter inside the vertebra than outside it
    from PIL import Image

    image = np.asarray(Image.open(tmp_path / frame["image"].iloc[0]), dtype=float)
    (x, y) = points[0, 0]
    assert image[int(y) + 2, int(x) + 3] > image[int(y) - 4, int(x) - 4]
    with pytest.raises(ConfigError, match="exists"):
        make_landmark_dataset(tmp_path, images=2, size=48)


def test_cli_phantom_landmarks(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app

    result = CliRunner().invoke(
        app, ["data", "phantom", "--out", str(tmp_path), "--images", "4", "--size", "40", "--landmarks"]
    )
    assert result.exit_code == 0, result.output
    import pandas as pd

    assert "keypoints" in pd.read_csv(tmp_path / "manifest.csv").columns
