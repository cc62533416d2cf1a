"""Exam-level fusion of several series runs (MRNet's recipe), without a pipeline file: ``osteon exam fuse RUN...``.

Each run is a binary run of one series (e.g. ``slices`` on the sagittal, coronal and axial series of knee MRI exams);
their tables are joined by exam (``study_id``). :class:`~osteon.models.slices.ExamFusion` (logistic regression on the
per-series log-odds, a missing series imputed by its validation mean) is fitted on the runs' **validation**
predictions, the operating point is chosen on the fused validation scores (Youden), and the fused model is evaluated
on the runs' **test** exams with bootstrap CIs by patient, beside each series alone on the same exams. Runs whose test
predictions are missing are evaluated first (``osteon evaluate RUN --split test``).

Written to ``--out``: ``fusion.json`` (the fitted weights, the runs, the series names), ``predictions_val.csv`` and
``predictions_test.csv`` (one row per exam: ``study_id``, ``patient_id``, ``truth``, the per-series scores and
``prob_fused``), ``metrics.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from osteon.errors import ConfigError


def _series_table(run: Path, split: str, name: str) -> tuple[pd.DataFrame, str]:
    from osteon.engine import evaluate
    from osteon.engine.rundir import RunDir

    rundir = RunDir.open(run)
    state = rundir.read_json(rundir.state)["task"]
    positive = state.get("positive_class")
    if positive is None or len(state.get("class_names", [])) != 2:
        raise ConfigError(f"{run}: exam fusion needs binary runs (one positive class of two); this run is not.")
    path = rundir.predictions(split)
    if not path.is_file():
        if split == "val":
            raise ConfigError(f"{run}: no validation predictions ({path.name}). Fix: train the run with a val split.")
        evaluate(run, split=split, progress=False)
    frame = pd.read_csv(path)
    if "study_id" not in frame or frame["study_id"].isna().any():
        raise ConfigError(
            f"{path}: exam fusion joins series by exam and needs a study_id for every row. Fix: add a study_id "
            "column (the exam) to the Manifest of each series run."
        )
    if frame["study_id"].duplicated().any():
        raise ConfigError(f"{path}: several rows of one exam ({name}); fusion takes one series per exam per run.")
    table = pd.DataFrame(
        {
            "study_id": frame["study_id"].astype(str),
            "patient_id": frame["patient_id"].astype(str) if "patient_id" in frame else frame["study_id"].astype(str),
            f"truth_{name}": (frame["truth"].astype(str) == str(positive)).astype(int),
            name: frame[f"prob_{positive}"].astype(float),
        }
    )
    return table, str(positive)


def exam_table(runs: Sequence[Path], names: Sequence[str], split: str) -> pd.DataFrame:
    """One row per exam of ``split``: ``study_id``, ``patient_id``, ``truth`` (0/1) and one score column per series
    (NaN where the exam lacks the series).

    Raises:
        ConfigError: a run is not binary, has no ``study_id``, or two runs disagree on an exam's label.
    """
    merged: pd.DataFrame | None = None
    for run, name in zip(runs, names, strict=True):
        table, _ = _series_table(Path(run), split, name)
        if merged is None:
            merged = table
        else:
            merged = merged.merge(table, on="study_id", how="outer", suffixes=("", f"_{name}"))
            merged["patient_id"] = merged["patient_id"].fillna(merged.pop(f"patient_id_{name}"))
    if merged is None:
        raise ConfigError("exam fusion needs at least one run per series. Fix: pass the runs.")
    truths = merged[[f"truth_{n}" for n in names]]
    disagree = truths.nunique(axis=1, dropna=True) > 1
    if disagree.any():
        raise ConfigError(
            f"exams {', '.join(merged.loc[disagree, 'study_id'].head(5))} have different labels in different runs. "
            "Fix: give every series of an exam the exam's label."
        )
    merged["truth"] = truths.max(axis=1).astype(int)
    return merged.drop(columns=list(truths.columns)).sort_values("study_id").reset_index(drop=True)


def fuse_runs(
    runs: Sequence[str | Path],
    *,
    out: str | Path,
    names: Sequence[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the exam fusion on validation, evaluate it on test (see the module docstring); returns the metrics.

    Args:
        runs: Finished binary runs, one per series.
        out: Folder for the results (created; must not hold a previous fusion).
        names: Series names, one per run (default: the runs' folder names).
        n_resamples: Bootstrap resamples for the CIs.
        seed: Bootstrap seed.

    Raises:
        ConfigError: fewer than two runs, duplicate names, an existing ``fusion.json`` in ``out``, or runs that cannot
            be joined by exam.
    """
    from osteon import metrics
    from osteon.models.slices import ExamFusion

    paths = [Path(r) for r in runs]
    names = list(names) if names else [p.name for p in paths]
    if len(paths) < 2:
        raise ConfigError("exam fusion needs at least two series runs. Fix: pass one run per series.")
    if len(names) != len(paths) or len(set(names)) != len(names):
        raise ConfigError(f"series names {names} must be distinct, one per run. Fix: --names sagittal,coronal,axial.")
    out = Path(out)
    if (out / "fusion.json").exists():
        raise ConfigError(f"{out} already holds a fusion (fusion.json). Fix: choose another --out.")
    val, test = exam_table(paths, names, "val"), exam_table(paths, names, "test")
    if val["truth"].nunique() < 2:
        raise ConfigError("the validation exams hold one class only; the fusion cannot be fitted. Fix: a larger val.")
    fusion = ExamFusion(list(names)).fit(val[names].to_numpy(float), val["truth"].to_numpy(int))
    for table in (val, test):
        table["prob_fused"] = fusion.predict_proba(table[names].to_numpy(float))
    threshold = float(metrics.choose_threshold(val["truth"].to_numpy(int), val["prob_fused"].to_numpy(float)))
    groups = test["patient_id"].to_numpy()
    y, fused = test["truth"].to_numpy(int), test["prob_fused"].to_numpy(float)
    result: dict[str, Any] = {
        "n_exams": {"val": len(val), "test": len(test)},
        "operating_point": {"threshold": threshold, "method": "youden", "chosen_on": "val"},
        "fused": metrics.binary_report(
            y, fused, groups=groups, threshold=threshold, n_resamples=n_resamples, seed=seed
        ),
        "series_auc": {},
    }
    for name in names:  # each series alone, on the test exams that have it
        have = test[name].notna().to_numpy()
        if 0 < y[have].sum() < have.sum():
            ci = metrics.bootstrap_ci(
                metrics.roc_auc_score,
                y[have],
                test.loc[have, name].to_numpy(float),
                groups=groups[have],
                n_resamples=n_resamples,
                seed=seed,
            )
            result["series_auc"][name] = {"estimate": ci.estimate, "low": ci.low, "high": ci.high, "n": int(have.sum())}
    out.mkdir(parents=True, exist_ok=True)
    record = {"fusion": fusion.to_dict(), "runs": [str(p.resolve()) for p in paths], "series": names}
    (out / "fusion.json").write_text(json.dumps(record, indent=2))
    val.to_csv(out / "predictions_val.csv", index=False)
    test.to_csv(out / "predictions_test.csv", index=False)
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=float))
    return result
