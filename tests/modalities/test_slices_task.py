"""``slices`` (2.5D classification of series) end to end on phantom exams: train, evaluate (AUC with CIs by
patient), predict a volume file, explain (Grad-CAM on the key slice), report (CLI); segment3d slice overlays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osteon.errors import ConfigError


@pytest.fixture(scope="module")
def exam_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sagittal series of 40 phantom exams (the finding is planted in one slice of positive ones)."""
    from osteon.data.phantom_exams import make_exam_dataset

    out = tmp_path_factory.mktemp("exams")
    manifest = make_exam_dataset(out, exams=40, slices=6, size=32, seed=0)
    frame = pd.read_csv(manifest)
    frame[frame["series"] == "sagittal"].to_csv(out / "sagittal.csv", index=False)
    return out / "sagittal.csv"


@pytest.fixture(scope="module")
def slice_run(exam_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from osteon.engine import train

    patch = pytest.MonkeyPatch()
    patch.setenv("OSTEON_VOLUME_CACHE", str(tmp_path_factory.mktemp("cache")))
    out = tmp_path_factory.mktemp("runs") / "slices"
    train(
        task="slices",
        data=str(exam_data),
        model="tiny_cnn",
        slice_pooling="max",
        epochs=12,
        image_size=32,
        batch_size=8,
        lr=3e-3,
        out=str(out),
        progress=False,
    )
    yield out
    patch.undo()


@pytest.mark.slow
def test_slices_finds_the_planted_finding_and_explains_it(slice_run: Path, exam_data: Path, tmp_path: Path) -> None:
    """AUC with patient CIs on the test split; the key slice of positive series is the planted slice; predict_image
    and explain work on the volume file."""
    from osteon.engine import Predictor, evaluate
    from osteon.explain import explain_targets

    result = evaluate(slice_run, split="test")
    assert result["task"] == "slices" and result["n_patients"] == 8
    assert result["auc"]["estimate"] > 0.9 and result["auc"]["low"] <= result["auc"]["estimate"]
    frame = pd.read_csv(exam_data)
    predictor = Predictor.from_run(slice_run)
    positives = frame[(frame["label"] == 1) & (frame["split"] != "train")]
    hits = []
    for _, row in positives.iterrows():
        explanations = explain_targets(predictor, exam_data.parent / row["image"], targets=["1"], out_dir=tmp_path)
        (e,) = explanations
        assert e.overlay is not None and e.overlay.is_file() and e.map.shape == (32, 32)
        hits.append(f"slice {row['finding_slice']}," in e.target)
    assert np.mean(hits) >= 0.7, hits
    prediction = predictor.predict_image(exam_data.parent / positives["image"].iloc[0])
    assert prediction.class_names == ("0", "1") and prediction.probabilities.shape == (2,)
    with pytest.raises(ConfigError, match="gradcam only"):
        explain_targets(predictor, exam_data.parent / row["image"], method="eigencam")


@pytest.mark.slow
def test_slices_cli_evaluate_predict_explain_report(slice_run: Path, exam_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(slice_run), "--split", "val"])
    assert result.exit_code == 0, result.output
    volume = exam_data.parent / pd.read_csv(exam_data)["image"].iloc[-1]
    result = runner.invoke(app, ["explain", str(slice_run), str(volume), "--out", str(tmp_path / "cams")])
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "cams").glob("*_slice*_gradcam_*.png"))
    result = runner.invoke(app, ["report", str(slice_run)])
    assert result.exit_code == 0, result.output
    assert "Series per split" in (slice_run / "report.html").read_text()


def test_slices_refuses_bad_inputs(exam_data: Path, tmp_path: Path) -> None:
    from PIL import Image

    from osteon.data.volumes import VolumeError
    from osteon.engine import train

    with pytest.raises(ConfigError, match="slice_pooling"):
        train(task="slices", data=str(exam_data), model="tiny_cnn", slice_pooling="median", out=str(tmp_path / "a"))
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "a.png")
    rows = [{"image": "a.png", "label": i % 2, "patient_id": f"p{i}", "split": s} for i, s in enumerate("ttvv")]
    pd.DataFrame(rows).replace({"t": "train", "v": "val"}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(VolumeError, match="2D image"):
        train(task="slices", data=str(tmp_path / "m.csv"), model="tiny_cnn", out=str(tmp_path / "r"), progress=False)


def test_segment3d_explain_draws_the_slices_with_most_foreground(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app
    from osteon.data.phantom_volumes import make_volume_dataset
    from osteon.engine import Predictor, train
    from osteon.explain import explain_targets

    monkeypatch.setenv("OSTEON_VOLUME_CACHE", str(tmp_path / "cache"))
    manifest = make_volume_dataset(tmp_path / "vol", volumes=5, shape=(16, 32, 32))
    run = train(
        task="segment3d",
        data=str(manifest),
        model="tiny_unet3d",
        epochs=1,
        batch_size=4,
        patch_size=16,
        image_size=32,
        out=str(tmp_path / "run"),
        progress=False,
    )
    volume = manifest.parent / "images" / "vol_004.nii.gz"
    predictor = Predictor.from_run(run.path)
    explanations = explain_targets(predictor, volume, out_dir=tmp_path / "cams")
    assert 1 <= len(explanations) <= 3 and all(e.overlay is not None and e.overlay.is_file() for e in explanations)
    assert all(e.map.shape == (32, 32) and e.map.min() >= 0 and e.map.max() <= 1 for e in explanations)
    mask = predictor.predict_image(volume).mask
    counts = mask.reshape(len(mask), -1).sum(1)
    if counts.any():  # the slices drawn are those with the most predicted foreground, most first
        drawn = [int(e.target.split("slice ")[1].split(",")[0]) for e in explanations]
        assert counts[drawn[0]] == counts.max()
    result = CliRunner().invoke(app, ["explain", str(run.path), str(volume), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "cli").glob("vol_004_slice*_probability.png"))


@pytest.mark.slow
def test_exam_fusion_of_series_runs_weights_the_series_with_the_finding(
    slice_run: Path, exam_data: Path, tmp_path: Path
) -> None:
    """Three series runs (the finding is in the sagittal series only) fused per exam: the sagittal weight dominates,
    the fused test AUC (CIs by patient) is high, and the CLI writes the same files."""
    import json

    from typer.testing import CliRunner

    from osteon.cli.main import app
    from osteon.engine import train

    full = pd.read_csv(exam_data.parent / "manifest.csv")
    runs = [slice_run]
    for series in ("coronal", "axial"):
        full[full["series"] == series].to_csv(exam_data.parent / f"{series}.csv", index=False)
        runs.append(
            train(
                task="slices",
                data=str(exam_data.parent / f"{series}.csv"),
                model="tiny_cnn",
                slice_pooling="max",
                epochs=2,
                image_size=32,
                batch_size=8,
                out=str(tmp_path / series),
                progress=False,
            ).path
        )
    result = CliRunner().invoke(
        app,
        ["exam", "fuse", *map(str, runs), "--out", str(tmp_path / "fused"), "--names", "sagittal,coronal,axial"],
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "fused" / "fusion.json").read_text())
    coef = dict(zip(record["series"], record["fusion"]["coef"], strict=True))
    assert coef["sagittal"] > max(abs(coef["coronal"]), abs(coef["axial"])), coef
    metrics = json.loads((tmp_path / "fused" / "metrics.json").read_text())
    assert metrics["n_exams"] == {"val": 8, "test": 8}
    fused = metrics["fused"]["auc"]
    assert fused["estimate"] > 0.85 and fused["low"] <= fused["estimate"] <= fused["high"]
    table = pd.read_csv(tmp_path / "fused" / "predictions_test.csv")
    assert {"study_id", "patient_id", "truth", "sagittal", "coronal", "axial", "prob_fused"} <= set(table.columns)


def test_exam_fusion_refuses_a_single_run(tmp_path: Path) -> None:
    from osteon.pipelines.exam import fuse_runs

    with pytest.raises(ConfigError, match="at least two"):
        fuse_runs([tmp_path], out=tmp_path / "out")
