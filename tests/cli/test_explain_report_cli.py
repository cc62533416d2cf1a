"""``osteon explain`` and ``osteon report`` through Typer's test runner, on a trained phantom classifier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from osteon.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run(trained_classifier: Path) -> Path:
    """A copy of the trained phantom classifier (a sibling folder, so its relative paths hold), evaluated by the CLI."""
    copy = trained_classifier.parent / f"{trained_classifier.name}-cli"
    if not copy.exists():
        shutil.copytree(trained_classifier, copy)
    result = runner.invoke(app, ["evaluate", str(copy), "--split", "test", "--n-resamples", "100"])
    assert result.exit_code == 0, result.output
    return copy


def sample_images(run: Path) -> list[Path]:
    frame = pd.read_csv(run / "predictions_test.csv")
    return [Path(p) for p in frame["image"].head(2)]


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error:") and "Traceback" not in result.output, result.output
    return " ".join(lines)


def test_explain_writes_overlays_and_maps(run, tmp_path):
    images = sample_images(run)
    out = tmp_path / "cams"
    result = runner.invoke(app, ["explain", str(run), *map(str, images), "--out", str(out), "--class", "all"])
    assert result.exit_code == 0, result.output
    written = [Path(line) for line in result.stdout.splitlines()]
    assert len(written) == 2 * len(images) and all(p.is_file() and p.suffix == ".png" for p in written)
    for image in images:
        raw = np.load(out / f"{image.stem}_gradcam_1.npy")
        with Image.open(image) as original:
            assert raw.shape == (original.height, original.width)


def test_explain_sanity_check_and_method(run, tmp_path):
    image = sample_images(run)[0]
    result = runner.invoke(
        app, ["explain", str(run), str(image), "--out", str(tmp_path), "--method", "gradcam++", "--sanity-check"]
    )
    assert result.exit_code == 0, result.output
    assert "randomisation check" in result.stderr
    check = json.loads((tmp_path / f"{image.stem}_sanity.json").read_text())
    assert check["method"] == "gradcam++" and check["steps"][0]["block"] == "head.fc"
    assert (tmp_path / f"{image.stem}_sanity.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "saliency"], "Unknown CAM method 'saliency'"),
        (["--target-layer", "backbone.nope"], "no layer 'backbone.nope'"),
        (["--class", "broken"], "'broken' is not one of the model's classes"),
    ],
)
def test_explain_bad_options_fail_with_one_line(run, tmp_path, args, message):
    image = sample_images(run)[0]
    result = runner.invoke(app, ["explain", str(run), str(image), "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in error_line(result)


def test_report_prints_its_path(run):
    result = runner.invoke(app, ["report", str(run), "--gallery-size", "1", "--n-resamples", "100"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(run / "report.html")
    assert (run / "report.html").is_file() and (run / "model_card.md").is_file()


def test_report_with_readers_and_a_bad_readers_row(run, tmp_path):
    cases = pd.read_csv(run / "predictions_test.csv")["image"].map(lambda p: Path(p).name).tolist()
    good = tmp_path / "readers.csv"
    pd.DataFrame(
        {"reader": "R1", "case": cases, "call": ["1", "0"] * (len(cases) // 2) + ["1"] * (len(cases) % 2)}
    ).to_csv(good, index=False)
    result = runner.invoke(
        app, ["report", str(run), "--readers", str(good), "--gallery-size", "0", "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 0, result.output
    assert "Human readers" in (tmp_path / "r.html").read_text()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"reader": ["R1", "R1"], "case": [cases[0], cases[1]], "call": ["1", "perhaps"]}).to_csv(
        bad, index=False
    )
    result = runner.invoke(app, ["report", str(run), "--readers", str(bad), "--gallery-size", "0"])
    assert result.exit_code == 2
    assert "row 2 (line 3): call 'perhaps' is not allowed" in error_line(result)


def test_report_of_a_folder_that_is_not_a_run(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not an Osteon run directory" in error_line(result)
