"""Pipelines of real (tiny) runs on phantoms, through Python and the CLI: train → run → evaluate → reproduce."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.pipelines.geometry import crop_window
from osteon.pipelines.schema import PipelineError

pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.slow]  # the module's runs train for ~20-40 s
runner = CliRunner()

PIPELINE = {
    "name": "phantom-fracture",
    "version": "0.1",
    "runs": {"gate": "runs/gate", "detector": "runs/det", "crops": "runs/crops"},
    "stages": [
        {
            "name": "quality",
            "run": "gate",
            "gate": {"class": "F", "min_probability": 0.5},
            "train": {"options": {"task": "classify", "target": "sex", "model": "tiny_cnn", "image_size": 32}},
        },
        {
            "name": "detect",
            "run": "detector",
            "train": {
                "options": {"task": "detect", "model": "retinanet", "encoder": "resnet18", "image_size": 64}
                | {"batch_size": 8, "score_threshold": 0.0}  # keep every box: crops exist even after one epoch
            },
        },
        {
            "name": "classify",
            "run": "crops",
            "input": {"from": "detect", "crop": {"margin": 0.25, "min_size": 16, "min_score": 0.0, "top_k": 2}},
            "train": {
                "crops_from": "truth",
                "label": "label",
                "options": {"task": "classify", "model": "tiny_cnn", "image_size": 32, "batch_size": 16},
            },
        },
    ],
    "findings": [
        {"name": "fracture", "stage": "classify", "class": "fractured", "truth": "label", "positive": "fractured"},
        {"name": "boxes", "stage": "detect", "truth": "fractured"},
    ],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline folder after ``osteon pipeline train`` (1 epoch each) on 32 phantoms."""
    from osteon.data.phantom import make_phantom_dataset

    folder = tmp_path_factory.mktemp("pipeline")
    make_phantom_dataset(folder / "data", images=32, size=64, seed=1)
    (folder / "cascade.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    args = ["pipeline", "train", str(folder / "cascade.yaml"), str(folder / "data" / "manifest.csv"), "--epochs", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "classify: trained" in result.output
    return folder


def set_gate_at_median(folder: Path) -> float:
    """Move the gate's threshold to the median probability so that about half the images are rejected."""
    from osteon.data.manifest import Manifest
    from osteon.engine import Predictor

    table = Predictor.from_run(folder / "runs/gate").predict_manifest(Manifest.load(folder / "data/manifest.csv"))
    median = float(np.median(table["prob_F"]))
    spec = yaml.safe_load((folder / "cascade.yaml").read_text())
    spec["stages"][0]["gate"]["min_probability"] = round(median, 6)
    (folder / "cascade.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return median


def test_train_writes_crops_that_keep_patients_and_splits(trained: Path) -> None:
    crops = pd.read_csv(trained / "runs" / "crops_crops" / "manifest.csv")
    source = pd.read_csv(trained / "data" / "manifest.csv").set_index("image")
    assert set(crops["label"]) == {"fractured", "normal"}
    for rec in crops.to_dict("records"):
        image = str(Path(rec["source_image"]).relative_to(trained / "data"))
        assert rec["patient_id"] == source.loc[image, "patient_id"] and rec["split"] == source.loc[image, "split"]
        assert rec["label"] == source.loc[image, "label"]
        if rec["on_lesion"]:  # a crop around the true box holds it
            (box,) = json.loads(source.loc[image, "boxes"])
            x1, y1, x2, y2 = box["xyxy"]
            assert rec["x1"] <= x1 and rec["y1"] <= y1 and rec["x2"] >= x2 and rec["y2"] >= y2
    assert (trained / "runs" / "crops" / "pipeline_stage.json").is_file()


def test_run_gates_crops_and_maps_regions_back(trained: Path, tmp_path: Path) -> None:
    set_gate_at_median(trained)
    check = runner.invoke(app, ["pipeline", "check", str(trained / "cascade.yaml")])
    assert check.exit_code == 0 and "valid, 3 stages" in check.output
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["pipeline", "run", str(trained / "cascade.yaml"), str(trained / "data/manifest.csv"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads((out / "result.json").read_text())
    assert document["schema"] == "osteon.pipeline.result/1" and len(document["images"]) == 32
    rejected = [im for im in document["images"] if im["status"] == "rejected"]
    assert 0 < len(rejected) < 32
    detect = pd.read_csv(out / "stages" / "detect.csv")
    crops = pd.read_csv(out / "stages" / "classify.csv")
    passed = {im["image"] for im in document["images"] if im["status"] == "ok"}
    manifest = pd.read_csv(trained / "data/manifest.csv")
    ran = {str((trained / "data" / manifest["image"].iat[r]).resolve()) for r in detect["row"]}
    assert ran == passed  # rejected images never reach the detector
    for rec in detect.to_dict("records"):  # every crop is the configured window around a detected box
        boxes = sorted(json.loads(rec["pred_boxes"]), key=lambda b: -b["score"])[:2]
        expected = [crop_window(b["xyxy"], margin=0.25, min_size=16, square=True, image_hw=(64, 64)) for b in boxes]
        got = crops.loc[crops["row"] == rec["row"], ["x1", "y1", "x2", "y2"]].itertuples(index=False)
        assert [tuple(g) for g in got] == expected
    for image in document["images"]:
        for finding in image["findings"]:
            if image["status"] == "rejected":
                assert finding["status"] == "rejected:quality" and finding["probability"] is None
            if finding["name"] == "fracture" and finding["status"] == "ok":
                assert finding["probability"] == pytest.approx(
                    max(r["probability"] for r in finding["regions"]), abs=1e-5
                )


def test_saved_pipeline_reproduces_and_guards_its_runs(trained: Path, tmp_path: Path) -> None:
    from osteon.data.manifest import Manifest
    from osteon.pipelines.runner import Pipeline

    manifest = Manifest.load(trained / "data/manifest.csv")
    first = Pipeline.from_file(trained / "cascade.yaml").run(manifest)
    paths = first.save(tmp_path / "a")
    again = Pipeline.from_file(paths["pipeline"]).run(manifest)  # the saved file: absolute runs, versions
    pd.testing.assert_frame_equal(first.findings, again.findings)
    assert first.to_json()["images"] == again.to_json()["images"]
    saved = yaml.safe_load(paths["pipeline"].read_text())
    saved["versions"]["crops"] = "000000000000"
    paths["pipeline"].write_text(yaml.safe_dump(saved))
    with pytest.raises(PipelineError, match=r"run 'crops' .* saved with 000000000000"):
        Pipeline.from_file(paths["pipeline"])


def test_evaluate_scores_with_cis_and_attributes_errors(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["pipeline", "evaluate", str(trained / "cascade.yaml"), str(trained / "data/manifest.csv")]
    result = runner.invoke(app, [*args, "--out", str(out), "--n-resamples", "50", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "metrics.json").read_text())
    for name in ("fracture", "boxes"):
        entry = scores[name]
        auc = entry["image"]["auc"]
        assert auc["low"] <= auc["estimate"] <= auc["high"] and entry["image"]["n"] == 32
        (_, fp), (fn, _) = entry["image"]["confusion_matrix"]
        assert sum(n for reasons in entry["attribution"].values() for n in reasons.values()) == fp + fn
    assert set(scores["fracture"]["attribution"]) <= {"quality", "detect", "classify"}
    assert scores["fracture"]["localiser"]["stage"] == "detect"
    card = (out / "model_card.md").read_text()
    assert all(f"| {stage} |" in card for stage in ("quality", "detect", "classify")) and "Errors by stage" in card
    again = runner.invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output


def test_crops_from_predictions_label_by_overlap(trained: Path, tmp_path: Path) -> None:
    from osteon.data.manifest import Manifest
    from osteon.pipelines.schema import load_pipeline
    from osteon.pipelines.train import write_crop_dataset

    spec = load_pipeline(trained / "cascade.yaml")
    train = spec.stage("classify").train
    assert train is not None
    train.crops_from, train.negative = "predictions", "normal"
    crops = write_crop_dataset(spec, "classify", Manifest.load(trained / "data/manifest.csv"), tmp_path / "c").frame
    assert len(crops) == 2 * 32  # top_k boxes of every image (score_threshold 0 keeps them all)
    assert (crops.loc[crops["on_lesion"] == 1, "label"] == "fractured").all()
    assert (crops.loc[crops["on_lesion"] == 0, "label"] == "normal").all()


def test_unknown_run_directory_is_named(tmp_path: Path) -> None:
    from osteon.pipelines.runner import Pipeline

    (tmp_path / "p.yaml").write_text(yaml.safe_dump(PIPELINE))
    with pytest.raises(PipelineError, match=r"run 'crops' has no model at .*Fix: train it"):
        Pipeline.from_file(tmp_path / "p.yaml")


def test_a_learned_combine_is_fitted_on_val_then_used(trained: Path) -> None:
    from osteon.data.manifest import Manifest
    from osteon.pipelines.learned_combine import load_finding_threshold, load_learned_combine
    from osteon.pipelines.runner import Pipeline

    spec = yaml.safe_load((trained / "cascade.yaml").read_text())
    spec["name"], spec["stages"] = "phantom-learned", spec["stages"][1:]  # no gate: every image reaches the crops
    spec["stages"][1]["combine"] = "learned"
    spec["findings"] = spec["findings"][:1]
    (trained / "learned.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(PipelineError, match=r"none was fitted.*osteon pipeline train"):
        Pipeline.from_file(trained / "learned.yaml")
    data = pd.read_csv(trained / "data" / "manifest.csv")
    data["split"] = data["split"].replace({"test": "val"})  # more validation images to fit five weights on
    data.to_csv(trained / "data" / "manifest_val.csv", index=False)
    result = runner.invoke(
        app, ["pipeline", "train", str(trained / "learned.yaml"), str(trained / "data/manifest_val.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "classify: learned combine rule fitted on" in result.output and "Nothing to train" in result.output
    rule = load_learned_combine(trained / "runs" / "crops", "phantom-learned", "classify")
    assert rule is not None and rule.n_images == int((data["split"] == "val").sum())
    pipeline = Pipeline.from_file(trained / "learned.yaml")
    out = pipeline.run(Manifest.load(trained / "data" / "manifest.csv"))
    crops = out.stages["classify"]
    row = int(crops["row"].iat[0])
    part = crops[crops["row"] == row]
    expected = rule(part["prob_fractured"].to_numpy(float), part["region_score"].to_numpy(float))
    found = out.findings.query("finding == 'fracture' and row == @row")["probability"].iat[0]
    assert found == pytest.approx(expected)
    # the finding's image-level threshold is chosen on the same val images, not the crop classifier's own
    threshold = load_finding_threshold(trained / "runs" / "crops", "phantom-learned", "fracture")
    assert threshold is not None and out.findings.query("finding == 'fracture'")["threshold"].eq(threshold).all()
