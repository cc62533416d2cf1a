"""End-to-end engine tests on phantoms: train → evaluate → predict, resume, splits, other tasks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from osteon import metrics
from osteon.engine import Predictor, evaluate, train
from osteon.engine.checkpoint import load_model_file
from osteon.errors import ConfigError, RunDirError

FAST = {"model": "tiny_cnn", "image_size": 32, "batch_size": 16, "lr": 3e-3, "progress": False}


def test_run_directory_describes_itself(trained_classifier: Path, tmp_path: Path) -> None:
    for name in (
        "config.yaml",
        "state.json",
        "manifest.csv",
        "splits.csv",
        "model.pt",
        "operating_point.json",
        "predictions_val.csv",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
        "logs/metrics.csv",
    ):
        assert (trained_classifier / name).is_file(), name
    meta = load_model_file(trained_classifier / "model.pt")["meta"]
    assert meta["task"]["class_names"] == ["0", "1"]
    assert meta["monitor"]["name"] == "AUC" and meta["selected_by"] == "validation AUC"
    training = json.loads((trained_classifier / "training.json").read_text())
    assert training["monitor"] == {"name": "AUC", "direction": "max"}
    assert 0.0 <= training["best_score"] <= 1.0 and training["best_epoch"] == meta["best_epoch"]
    assert meta["preprocessing"]["image_size"] == 48
    assert {"osteon", "torch", "timm", "lightning"} <= set(meta["versions"])
    # the model file alone is enough to predict (copied away from its run directory)
    alone = tmp_path / "model.pt"
    shutil.copy(trained_classifier / "model.pt", alone)
    image = pd.read_csv(trained_classifier / "manifest.csv")["image"].iloc[0]
    prediction = Predictor.from_file(alone).predict_image(trained_classifier / image)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_evaluate_applies_the_validation_threshold_to_test(trained_classifier: Path) -> None:
    result = evaluate(trained_classifier, split="test", n_resamples=200, progress=False)
    point = json.loads((trained_classifier / "operating_point.json").read_text())
    assert result["threshold"] == pytest.approx(point["threshold"])
    val = pd.read_csv(trained_classifier / "predictions_val.csv", dtype={"truth": str})
    chosen = metrics.choose_threshold((val["truth"] == "1").to_numpy(int), val["prob_1"].to_numpy(), method="youden")
    assert chosen == pytest.approx(point["threshold"])  # chosen on validation predictions, not on test
    auc = result["auc"]
    assert auc["low"] <= auc["estimate"] <= auc["high"]
    assert auc["estimate"] > 0.8, "a 4-epoch CNN should separate phantom fractures"
    test = pd.read_csv(trained_classifier / "predictions_test.csv", dtype={"truth": str})
    called = (test["prob_1"] >= point["threshold"]).to_numpy()
    truth = (test["truth"] == "1").to_numpy()
    assert result["sensitivity"]["estimate"] == pytest.approx(called[truth].mean())
    assert json.loads((trained_classifier / "metrics.json").read_text())["test"]["n_images"] == len(test)
    assert result["ci"]["resampled_by"] == "patient"


def test_predict_reports_unreadable_files_and_goes_on(trained_classifier: Path, tmp_path: Path) -> None:
    manifest = pd.read_csv(trained_classifier / "manifest.csv")
    good = [trained_classifier / p for p in manifest["image"].iloc[:3]]
    broken = tmp_path / "broken.png"
    broken.write_bytes(good[0].read_bytes()[:100])
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    frame = Predictor.from_run(trained_classifier).predict_paths(
        [good[0], broken, good[1], notes, good[2]], progress=False
    )
    assert len(frame) == 5
    assert frame["image"].tolist()[1].endswith("broken.png")  # input order kept
    errors = frame["error"].fillna("")
    assert (errors != "").tolist() == [False, True, False, True, False]
    assert "broken.png" in errors.iloc[1] and "notes.png" in errors.iloc[3]
    assert frame.loc[errors == "", "prob_1"].between(0, 1).all()


def test_a_run_is_never_overwritten(trained_classifier: Path, phantom_dataset: Path) -> None:
    before = (trained_classifier / "model.pt").stat().st_mtime_ns
    with pytest.raises(RunDirError, match="--resume"):
        train(task="classify", data=str(phantom_dataset), out=str(trained_classifier), epochs=1, **FAST)
    assert (trained_classifier / "model.pt").stat().st_mtime_ns == before


class CrashAtEpochStart(L.Callback):
    """Simulates a crash (power cut, OOM kill) early in an epoch, after earlier epochs were checkpointed."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_resume_after_a_crash_reaches_the_same_final_epoch(phantom_dataset: Path, tmp_path: Path) -> None:
    common = {"task": "classify", "data": str(phantom_dataset), "target": "fractured", "epochs": 3, "seed": 1, **FAST}
    whole = train(out=str(tmp_path / "whole"), **common)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(out=str(tmp_path / "crashed"), callbacks=[CrashAtEpochStart(1)], **common)
    assert not (tmp_path / "crashed" / "model.pt").exists()
    with pytest.raises(RunDirError, match="did not finish"):
        Predictor.from_run(tmp_path / "crashed")
    resumed = train(resume=tmp_path / "crashed", progress=False)
    final = [torch.load(r.last_checkpoint, weights_only=False) for r in (whole, resumed)]
    assert final[0]["epoch"] == final[1]["epoch"] == 2
    assert final[0]["global_step"] == final[1]["global_step"]
    assert resumed.model.is_file()


def test_resume_without_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunDirError):
        train(resume=tmp_path / "nothing-here")


def test_missing_split_is_generated_grouped_by_patient(phantom_dataset: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(phantom_dataset).drop(columns=["split"])
    no_split = phantom_dataset.parent / "no_split.csv"
    frame.to_csv(no_split, index=False)
    with pytest.warns(UserWarning, match="split generated"):
        run = train(task="classify", data=str(no_split), target="fractured", epochs=1, out=str(tmp_path / "r"), **FAST)
    splits = pd.read_csv(run.manifest)
    per_patient = splits.groupby("patient_id")["split"].nunique()
    assert (per_patient == 1).all()
    assert set(splits["split"]) == {"train", "val", "test"}
    assert json.loads(run.state.read_text())["split"]["source"] == "generated"


@pytest.mark.parametrize(("task", "target", "headline"), [("grade", "kl_grade", "qwk"), ("regress", "target", "mae")])
def test_grade_and_regress_train_and_evaluate(
    phantom_dataset: Path, tmp_path: Path, task: str, target: str, headline: str
) -> None:
    run = train(task=task, data=str(phantom_dataset), target=target, epochs=2, out=str(tmp_path / task), **FAST)
    result = evaluate(run.path, split="test", n_resamples=100, progress=False)
    value = result[headline]
    assert value["low"] <= value["estimate"] <= value["high"]
    frame = pd.read_csv(run.predictions("test"))
    assert len(frame) == result["n_images"]
    if task == "grade":
        probs = frame[[f"prob_{g}" for g in range(5)]].to_numpy()
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
        np.testing.assert_allclose(frame["expected_grade"], probs @ np.arange(5), atol=1e-4)


def test_covariates_sampler_and_frozen_backbone(phantom_dataset: Path, tmp_path: Path) -> None:
    run = train(
        task="classify",
        data=str(phantom_dataset),
        target="fractured",
        covariates=["age", "sex"],
        class_weighting="sampler",
        freeze_backbone_epochs=1,
        epochs=2,
        out=str(tmp_path / "cov"),
        **FAST,
    )
    predictor = Predictor.from_run(run.path)
    assert predictor.covariates.columns == ["age", "sex"]
    assert predictor.covariates.dim == 2 + 3  # age z + missing flag; sex F/M one-hot + missing flag
    image = run.path / pd.read_csv(run.manifest)["image"].iloc[0]
    with_cov = predictor.predict_image(image, covariates={"age": 70, "sex": "F"})
    without = predictor.predict_image(image)  # missing covariates are encoded, not an error
    assert with_cov.probabilities.shape == without.probabilities.shape == (2,)


def test_unknown_covariate_and_target_are_config_errors(phantom_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bmi"):
        train(task="classify", data=str(phantom_dataset), covariates=["bmi"], epochs=1, out=str(tmp_path / "a"), **FAST)
    with pytest.raises(ConfigError, match="--target"):
        train(task="classify", data=str(phantom_dataset), target="kl", epochs=1, out=str(tmp_path / "b"), **FAST)


def test_external_validation_on_another_dataset(trained_classifier: Path, tmp_path: Path) -> None:
    from osteon.data.phantom import make_phantom_dataset

    make_phantom_dataset(tmp_path / "other", images=40, size=96, seed=7)  # another "hospital": other size, seed
    other = tmp_path / "other" / "manifest.csv"
    result = evaluate(trained_classifier, data=other, n_resamples=100, progress=False)
    point = json.loads((trained_classifier / "operating_point.json").read_text())
    assert result["threshold"] == pytest.approx(point["threshold"])  # the validation threshold, unchanged
    # defect 9: the other dataset's own split column must not narrow external validation by default
    labelled = pd.read_csv(other)["label"].notna().sum()
    assert (result["split"], result["n_images"]) == ("all", labelled)
    only_test = evaluate(trained_classifier, split="test", data=other, n_resamples=100, progress=False)
    assert only_test["n_images"] == int((pd.read_csv(other)["split"] == "test").sum()) < labelled
    stored = json.loads((trained_classifier / "metrics.json").read_text())
    assert {"manifest-all", "manifest-test"} <= set(stored)  # two entries, kept beside each other


@pytest.mark.shared_data
def test_predict_reads_real_dicom(trained_classifier: Path, shared_data: Path) -> None:
    files = sorted((shared_data / "ddh_pelvis_xray_dicom" / "dicoms" / "xray").glob("*.dcm"))[:3]
    frame = Predictor.from_run(trained_classifier).predict_paths(files, progress=False)
    assert (frame["error"] == "").all()
    assert frame["prob_1"].between(0, 1).all()
