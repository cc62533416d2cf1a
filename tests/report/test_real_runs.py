"""Reports of real (tiny) runs on the shared datasets, opened in headless Chromium.

Knee KL grading (Chen 2018) and FracAtlas fracture classification, tiny_cnn for one epoch: the models are
weak, the point is that every section of the report is built from real runs and renders offline, and that
FracAtlas' hardware shortcut (84 fractured vs 1 non-fractured image with an implant) is made visible.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from osteon.cli.main import app

from .browser import chromium, render

pytestmark = pytest.mark.shared_data
runner = CliRunner()


def train_and_evaluate(out: Path, **options) -> Path:
    from osteon.engine import evaluate, train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(model="tiny_cnn", epochs=1, batch_size=64, progress=False, out=str(out), **options)
        evaluate(run.path, split="test", n_resamples=200, progress=False)
    return run.path


@pytest.fixture(scope="module")
def knee_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_and_evaluate(
        tmp_path_factory.mktemp("real") / "knee-smoke",
        task="grade",
        data=str(shared_data / "knee_kl_chen2018"),
        image_size=48,
    )


@pytest.fixture(scope="module")
def fracatlas_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_and_evaluate(
        tmp_path_factory.mktemp("real") / "fa-smoke",
        task="classify",
        data=str(shared_data / "fracatlas"),
        target="fractured",
        image_size=64,
    )


def report_in_browser(run: Path, work: Path) -> str:
    result = runner.invoke(app, ["report", str(run), "--gallery-size", "2", "--n-resamples", "200"])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path == run / "report.html"
    rendered = render(path, work, height=3000)
    assert rendered.page_requests == []
    for section in ("dataset", "flow-diagram", "method", "results", "failure-analysis", "gallery", "claim"):
        assert f'id="{section}"' in rendered.dom
    assert rendered.screenshot.stat().st_size > 50_000
    return rendered.dom


def test_knee_grading_report(knee_run, tmp_path):
    chromium()
    dom = report_in_browser(knee_run, tmp_path)
    assert "Dataset: 967 images" in dom and "train: 600" in dom and "val: 125" in dom and "test: 242" in dom
    assert "quadratic weighted kappa" in dom and "Metrics — at least" in dom and "&gt;= 4" in dom
    assert "Largest grade errors" in dom and dom.count('class="case"><img') >= 2
    assert "laterality" in dom  # subgroups by knee side
    assert "Possible shortcut" not in dom
    assert "Patient level" in dom  # CLAIM item 20 answered from the patient ids


def test_fracatlas_report_shows_the_hardware_shortcut(fracatlas_run, tmp_path):
    chromium()
    dom = report_in_browser(fracatlas_run, tmp_path)
    assert "Dataset: 974 images" in dom and "no patient ids" in dom
    assert re.search(r"hardware = 1: 84 of 85 images \(98\.8%\) have label 1", dom)
    assert re.search(r"<td>hardware</td><td>1</td><td>\d+</td>", dom)  # its subgroup row on the test cases
    assert "label_conflict" in dom  # IMG0003298: folder says fractured, dataset.csv says not
    for group in ("True positives", "False positives", "False negatives", "True negatives"):
        assert f"<h4>{group}" in dom
    card = (fracatlas_run / "model_card.md").read_text()
    assert "Possible shortcut: hardware = 1" in card and "no patient identifiers" in card


def test_explain_cli_contract_on_fracatlas(fracatlas_run, shared_data, tmp_path):
    image = shared_data / "fracatlas" / "images" / "Fractured" / "IMG0000019.jpg"
    result = runner.invoke(app, ["explain", str(fracatlas_run), str(image), "--out", str(tmp_path / "cams")])
    assert result.exit_code == 0, result.output
    overlay = Path(result.stdout.strip())
    assert overlay.is_file() and overlay.parent == tmp_path / "cams"
    raw = np.load(overlay.with_suffix(".npy"))
    assert raw.shape == (2880, 2304)  # the original's pixel grid (as displayed)
