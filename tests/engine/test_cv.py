"""Cross-validation and ensembles on phantoms: patient-grouped folds, pooled out-of-fold metrics, fold ensemble."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osteon.engine import Predictor, RunDir
from osteon.engine.checkpoint import load_model_file
from osteon.engine.cv import cross_validate, flat_metrics, spread
from osteon.engine.ensemble import _check_compatible, build_ensemble
from osteon.errors import ConfigError

FAST = {"model": "tiny_cnn", "image_size": 32, "batch_size": 16, "lr": 3e-3, "epochs": 1, "progress": False}


@pytest.fixture(scope="module")
def cv_run(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("cv") / "cv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_validate(
            task="classify",
            data=str(phantom_dataset),
            target="fractured",
            out=str(out),
            folds=3,
            test_fraction=0.2,
            n_resamples=50,
            **FAST,
        )


def test_folds_are_patient_grouped_and_out_of_fold_predictions_cover_every_image(cv_run) -> None:
    root = cv_run.path
    folds = pd.read_csv(root / "folds.csv")
    manifest = pd.read_csv(root / "fold_1" / "manifest.csv")
    folds["patient_id"] = manifest["patient_id"].to_numpy()  # same row order (one manifest)
    assert folds.groupby("patient_id")["fold"].nunique(dropna=False).max() == 1  # a patient is in one fold
    assert folds.loc[folds["split"] == "test", "fold"].isna().all()  # the held-out test is in no fold
    oof = pd.read_csv(root / "predictions_oof.csv")
    assert len(oof) == int((folds["split"] != "test").sum())
    assert sorted(oof["fold"].unique()) == [1, 2, 3]
    for k in (1, 2, 3):
        split = pd.read_csv(root / "folds" / f"fold_{k}.csv")
        frame = manifest.assign(split=split["split"].to_numpy(), fold=folds["fold"].to_numpy())
        assert (frame.loc[frame["fold"] == k, "split"] == "test").all()
        seen = set(frame.loc[frame["split"].isin(["train", "val"]), "patient_id"])
        assert not seen & set(frame.loc[frame["split"] == "test", "patient_id"])  # fold k never trained on itself
        assert frame.loc[folds["split"] == "test", "split"].isna().all()


def test_summary_pools_and_spreads(cv_run) -> None:
    summary = json.loads((cv_run.path / "cv.json").read_text())
    assert summary["folds"] == 3 and summary["stratified_by"] == "fractured"
    auc = summary["pooled"]["auc"]
    assert auc["low"] <= auc["estimate"] <= auc["high"]
    assert summary["spread"]["auc"]["n_folds"] == 3
    fold_aucs = [
        json.loads((cv_run.path / f"fold_{k}" / "metrics.json").read_text())["test"]["auc"]["estimate"]
        for k in (1, 2, 3)
    ]
    assert summary["spread"]["auc"]["mean"] == pytest.approx(np.mean(fold_aucs))
    assert summary["spread"]["auc"]["sd"] == pytest.approx(np.std(fold_aucs, ddof=1))
    assert "median of the 3 fold thresholds" in summary["pooled"]["operating_point"]["method"]
    assert summary["ensemble"]["test"]["n_images"] > 0


def test_the_fold_ensemble_is_a_run_that_averages_its_members(cv_run) -> None:
    ensemble = cv_run.ensemble
    meta = load_model_file(ensemble.model)["meta"]
    assert meta["ensemble"]["n_members"] == 3
    assert [m["name"] for m in meta["ensemble"]["members"]] == ["fold_1", "fold_2", "fold_3"]
    predictor = Predictor.from_run(ensemble.path)
    members = [Predictor.from_run(r.path) for r in cv_run.folds]
    manifest = RunDir(ensemble.path).load_manifest()
    image = manifest.resolve(manifest.frame["image"].iloc[0])
    mean = np.mean([m.predict_image(image).probabilities for m in members], axis=0)
    np.testing.assert_allclose(predictor.predict_image(image).probabilities, mean, atol=1e-5)
    assert json.loads(ensemble.operating_point.read_text())["chosen_on"].startswith("pooled out-of-fold")
    assert (ensemble.path / "predictions_test.csv").is_file()

    from osteon.report.crossval import claim_ensemble_answer, crossval_tables
    from osteon.report.rundata import RunData

    data = RunData.load(ensemble.path)
    answer, source = claim_ensemble_answer(data)
    assert answer.startswith("Ensemble of 3 models") and "3-fold cross-validation" in answer
    assert "cross_validation.json" in source
    captions = [t.caption for t in crossval_tables(data)]
    assert captions[0] == "Ensemble of 3 models" and "3-fold cross-validation" in captions

    from osteon.explain.explainer import explain_image
    from osteon.report import write_report

    explanation = explain_image(predictor, image)  # CAMs through the ensemble, at the first member's layer
    assert explanation is not None
    html = write_report(ensemble.path, gallery_size=1, sanity_check=False, n_resamples=50, progress=False).read_text()
    assert "Ensemble of 3 models" in html and "pooled out-of-fold metrics" in html
    assert "Out-of-fold ROC curve of each cross-validation fold" in html
    assert all((ensemble.figures / f"cv_roc_folds.{ext}").is_file() for ext in ("png", "svg", "pdf"))


def test_ensembles_of_any_runs_and_what_they_refuse(cv_run, tmp_path: Path) -> None:
    runs = [r.path for r in cv_run.folds[:2]]
    ensemble = build_ensemble(runs, tmp_path / "pair")
    assert load_model_file(ensemble.model)["meta"]["ensemble"]["n_members"] == 2
    # every image of folds 1-3 trained at least one of the two members: none may be a test image of the pair
    split = pd.read_csv(ensemble.splits)["split"]
    assert "test" not in set(split.dropna()) and (split == "train").sum() > 0
    with pytest.raises(ConfigError, match="at least two runs"):
        build_ensemble(runs[:1], tmp_path / "one")
    with pytest.raises(ConfigError, match="is itself an ensemble"):
        build_ensemble([runs[0], ensemble.path], tmp_path / "nested")
    metas = [load_model_file(RunDir(r).model)["meta"] for r in runs]
    other = json.loads(json.dumps(metas[1]))
    other["task"]["class_names"] = ["no", "yes"]
    with pytest.raises(ConfigError, match="their classes differ"):
        _check_compatible([RunDir(r) for r in runs], [metas[0], other])
    assert not (tmp_path / "one").exists()


def test_flat_metrics_and_spread() -> None:
    result = {"auc": {"estimate": 0.8, "low": 0.7, "high": 0.9}, "per_class": {"a": {"f1": {"estimate": 0.5}}}, "n": 3}
    assert flat_metrics(result) == {"auc": 0.8, "per_class.a.f1": 0.5}
    summary = spread([{"metrics": {"auc": 0.8}}, {"metrics": {"auc": 0.6, "x": 1.0}}])
    assert set(summary) == {"auc"} and summary["auc"]["mean"] == pytest.approx(0.7)
