"""Cross-validation: K runs on patient-grouped folds, pooled out-of-fold metrics, and the ensemble of the folds.

Layout of ``cfg.out`` (a folder of runs, not a run itself)::

    CV/
      cv_config.yaml          the resolved TrainConfig and the CV settings
      folds.csv               image, split (test = held out from every fold, or train), fold (1..K)
      folds/fold_<k>.csv      the split file of fold k: fold k = test (out of fold), the other folds train/val
      fold_<k>/               one ordinary run per fold (trained with --split-file folds/fold_<k>.csv)
      predictions_oof.csv     every fold's test predictions, with a ``fold`` column
      cv.json                 per-fold metrics, their spread, the pooled metrics with CIs, the ensemble's result
      ensemble/               the ensemble of the K fold models (a run: predict, evaluate, explain, report)

Each fold k trains on the other folds, selects its epoch and operating point on a patient-grouped validation part
of them (``val_fraction``), and is evaluated on fold k, which it never saw. The pooled metrics treat the K
out-of-fold tables as one test set (intervals resample patients across all of them); for binary tasks the
operating point is the median of the K thresholds, each chosen on its own fold's validation part. With
``test_fraction`` > 0 a patient-grouped test set is held out of every fold first, and the ensemble is
evaluated on it: the only estimate here that no member has seen.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from osteon.data.manifest import Manifest
from osteon.data.splits import apply_split_file, group_ids, kfold_splits, make_splits, save_split_file
from osteon.engine.config import TrainConfig
from osteon.engine.prepare import load_manifest
from osteon.engine.rundir import RunDir, json_safe
from osteon.errors import ConfigError
from osteon.tasks import TASKS, TaskState, build_task


@dataclass
class CrossValidation:
    """What :func:`cross_validate` wrote: the folder, the fold runs, the ensemble run and the summary (cv.json)."""

    path: Path
    folds: list[RunDir]
    ensemble: RunDir | None
    summary: dict[str, Any]


def cross_validate(
    cfg: TrainConfig | None = None,
    *,
    folds: int = 5,
    test_fraction: float = 0.0,
    ensemble: bool = True,
    n_resamples: int = 1000,
    progress: bool = True,
    **overrides: Any,
) -> CrossValidation:
    """Train ``folds`` runs on patient-grouped folds of ``cfg.data`` and pool their out-of-fold predictions.

    Args:
        cfg: The training config of every fold (or its fields as keyword ``overrides``); ``cfg.out`` is the
            CV folder. A ``split_file`` with a ``fold`` column (``osteon data split --folds K``) gives the folds
            (its ``test`` rows are held out); otherwise folds are made here, grouped by patient and duplicate
            content and stratified by the target for classification and grading.
        folds: K ≥ 2.
        test_fraction: Patient-grouped fraction held out of every fold, on which the ensemble is evaluated (0:
            none; the ensemble is then built but has no unseen test set).
        ensemble: Also build the ensemble of the K fold models (``CV/ensemble``).
        n_resamples: Bootstrap resamples for every interval.
        progress: Show progress bars.

    Returns:
        :class:`CrossValidation`.

    Raises:
        RunDirError: ``cfg.out`` is not empty.
        ConfigError: K < 2 or larger than the number of patients; a split file without a ``fold`` column.
    """
    if cfg is None:
        cfg = TrainConfig.from_sources(**overrides)
    elif overrides:
        cfg = TrainConfig(**{**cfg.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})
    if not 0 <= test_fraction < 1:
        raise ConfigError(f"test_fraction must be in [0, 1); got {test_fraction}.")
    root = Path(cfg.out)
    RunDir.check_new(root)
    manifest, folds_frame, stratify = _assign_folds(cfg, folds, test_fraction)
    k = int(folds_frame["fold"].max())
    root.mkdir(parents=True, exist_ok=True)
    (root / "cv_config.yaml").write_text(
        yaml.safe_dump(
            {"train": cfg.model_dump(mode="json"), "folds": k, "test_fraction": test_fraction, "stratify": stratify},
            sort_keys=False,
        )
    )
    save_split_file(manifest, folds_frame["split"], root / "folds.csv", folds=folds_frame["fold"])

    from osteon.engine.evaluate import evaluate
    from osteon.engine.fit import train

    runs: list[RunDir] = []
    per_fold: list[dict[str, Any]] = []
    tables: list[pd.DataFrame] = []
    groups = group_ids(manifest)
    for fold in range(1, k + 1):
        split_path = root / "folds" / f"fold_{fold}.csv"
        split = _fold_split(manifest, folds_frame, fold, cfg=cfg, stratify=stratify, groups=groups)
        save_split_file(manifest, split, split_path)
        fold_cfg = TrainConfig(**{**cfg.model_dump(), "out": str(root / f"fold_{fold}"), "split_file": str(split_path)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the same data warnings K times
            run = train(fold_cfg, progress=progress)
        result = evaluate(run.path, split="test", n_resamples=n_resamples, seed=cfg.seed, progress=progress)
        runs.append(run)
        per_fold.append(
            {
                "fold": fold,
                "run": run.path.name,
                "n_images": result.get("n_images"),
                "n_patients": result.get("n_patients"),
                "metrics": flat_metrics(result),
                "operating_point": run.read_json(run.operating_point) or None,
            }
        )
        tables.append(run.read_predictions("test").assign(fold=fold))

    pooled_table = pd.concat(tables, ignore_index=True)
    pooled_table.to_csv(root / "predictions_oof.csv", index=False)
    task = build_task(TaskState(**runs[0].read_json(runs[0].state)["task"]))
    labelled = pooled_table[(pooled_table["error"].fillna("") == "") & pooled_table["truth"].notna()]
    point = _pooled_operating_point(per_fold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled = task.evaluate(labelled, operating_point=point, n_resamples=n_resamples, seed=cfg.seed)
    pooled.pop("task", None)
    summary: dict[str, Any] = {
        "folds": k,
        "task": task.name,
        "monitor": task.monitor.name,
        "test_fraction": test_fraction,
        "stratified_by": stratify,
        "seed": cfg.seed,
        "n_images_out_of_fold": len(labelled),
        "n_patients_out_of_fold": int(labelled["patient_id"].nunique()) if "patient_id" in labelled else None,
        "per_fold": per_fold,
        "spread": spread(per_fold),
        "pooled": pooled,
        "pooled_predictions_file": "predictions_oof.csv",
        "pooled_note": (
            "out-of-fold predictions of the K fold models pooled into one table; intervals resample patients; "
            + (f"operating point: {point['method']}" if point else "no operating point")
        ),
        "ensemble": None,
    }
    ensemble_run = None
    if ensemble:
        ensemble_run = _build_fold_ensemble(root, runs, manifest, folds_frame, labelled, point, task, progress)
        summary["ensemble"] = {"run": ensemble_run.path.name}
        if (folds_frame["split"] == "test").any():
            result = evaluate(
                ensemble_run.path, split="test", n_resamples=n_resamples, seed=cfg.seed, progress=progress
            )
            summary["ensemble"]["test"] = {"n_images": result.get("n_images"), "metrics": flat_metrics(result)}
        ensemble_run.write_json(ensemble_run.path / "cross_validation.json", summary)
    RunDir(root).write_json(root / "cv.json", summary)
    return CrossValidation(root, runs, ensemble_run, json_safe(summary))


def _assign_folds(cfg: TrainConfig, k: int, test_fraction: float) -> tuple[Manifest, pd.DataFrame, str | None]:
    """The Manifest and per row ``split`` (``test``/``train``) and ``fold`` (1..K; NA for test rows)."""
    manifest = load_manifest(cfg)
    if cfg.task not in TASKS:
        raise ConfigError(f"task={cfg.task!r} is not available; available: {', '.join(TASKS.names())}.")
    task_cls = TASKS.get(cfg.task)
    state = task_cls.setup(manifest, target=cfg.target, positive_class=cfg.positive_class, loss=cfg.loss)
    stratify = state.target if task_cls.stratify_by_target else None
    if cfg.split_file:
        given = apply_split_file(manifest, Path(cfg.split_file))
        if "fold" not in given.frame:
            raise ConfigError(
                f"{cfg.split_file}: no 'fold' column, so it cannot give cross-validation folds. Fix: write one with "
                f"`osteon data split DATA --folds {k} --out FOLDS.csv`, or leave --split-file out."
            )
        fold = given.frame["fold"].astype("Int64") + 1  # files count folds from 0
        split = given.frame["split"].where(given.frame["split"] == "test", "train")
        return manifest, pd.DataFrame({"split": split.astype("string"), "fold": fold}), stratify
    groups = group_ids(manifest)
    if test_fraction > 0:
        split = make_splits(manifest, val=0.0, test=test_fraction, stratify=stratify, seed=cfg.seed, groups=groups)
    else:
        split = pd.Series("train", index=manifest.frame.index, dtype="string")
    rest = (split != "test").to_numpy()
    fold = pd.Series(pd.NA, index=manifest.frame.index, dtype="Int64")
    fold[rest] = (
        kfold_splits(manifest.subset(rest), k=k, stratify=stratify, seed=cfg.seed, groups=groups[rest]).to_numpy() + 1
    )
    return manifest, pd.DataFrame({"split": split.where(split == "test", "train"), "fold": fold}), stratify


def _fold_split(
    manifest: Manifest, folds: pd.DataFrame, fold: int, *, cfg: TrainConfig, stratify: str | None, groups: pd.Series
) -> pd.Series:
    """Split of one fold: its own rows ``test``; the other folds ``train``/``val`` (grouped); held-out test: none."""
    split = pd.Series(pd.NA, index=manifest.frame.index, dtype="string")
    mine = (folds["fold"] == fold).fillna(False).to_numpy()
    others = (folds["fold"].notna() & (folds["fold"] != fold)).fillna(False).to_numpy()
    split[mine] = "test"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        inner = make_splits(
            manifest.subset(others),
            val=cfg.val_fraction,
            test=0.0,
            stratify=stratify,
            seed=cfg.seed + fold,
            groups=groups[others],
        )
    split[others] = inner.to_numpy()
    return split


def _pooled_operating_point(per_fold: list[dict[str, Any]]) -> dict[str, Any] | None:
    thresholds = [p["operating_point"]["threshold"] for p in per_fold if p.get("operating_point")]
    if not thresholds:
        return None
    return {
        "threshold": float(np.median(thresholds)),
        "method": f"median of the {len(thresholds)} fold thresholds, each chosen on its fold's validation part",
        "chosen_on": "val of each fold",
        "fold_thresholds": [float(t) for t in thresholds],
    }


def _build_fold_ensemble(
    root: Path,
    runs: list[RunDir],
    manifest: Manifest,
    folds: pd.DataFrame,
    oof: pd.DataFrame,
    point: dict[str, Any] | None,
    task: Any,
    progress: bool,
) -> RunDir:
    from osteon.engine.ensemble import build_ensemble

    split = folds["split"].where(folds["split"] == "test", "train").to_numpy()
    chosen = task.choose_operating_point(oof) if point is not None else None
    note = "pooled out-of-fold predictions of the K fold models (never the held-out test set)"
    return build_ensemble(
        [r.path for r in runs],
        root / "ensemble",
        manifest=manifest.with_columns(split=pd.array(split, dtype="string")),
        operating_frame=oof if chosen is not None else None,
        operating_note=note,
        extra={"cross_validation": {"folds": len(runs), "summary": "cross_validation.json"}},
        split_note=(
            f"{len(runs)}-fold cross-validation: every image of a fold trained some member (train); the patients held "
            "out of every fold are the test split"
        ),
        progress=progress,
    )


def flat_metrics(result: dict[str, Any], *, depth: int = 3) -> dict[str, float]:
    """Every interval-able metric of an evaluation (``{estimate, low, high}`` dicts) as ``path → estimate``.

    Example: ``{"auc": {"estimate": 0.9, ...}, "per_class": {"1": {"sensitivity": {"estimate": 0.8}}}}`` →
    ``{"auc": 0.9, "per_class.1.sensitivity": 0.8}``.
    """
    out: dict[str, float] = {}

    def walk(value: Any, path: str, level: int) -> None:
        if isinstance(value, dict) and "estimate" in value:
            estimate = value["estimate"]
            if isinstance(estimate, int | float) and estimate is not None:
                out[path] = float(estimate)
            return
        if isinstance(value, dict) and level < depth:
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key), level + 1)

    walk(result, "", 0)
    return out


def spread(per_fold: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, SD (ddof 1), min and max across folds of every metric that every fold has (NaN folds left out)."""
    keys = set.intersection(*(set(p["metrics"]) for p in per_fold)) if per_fold else set()
    out = {}
    for key in sorted(keys):
        values = np.array([p["metrics"][key] for p in per_fold], dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        out[key] = {
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "min": float(values.min()),
            "max": float(values.max()),
            "n_folds": len(values),
        }
    return out
