"""``evaluate``: metrics with confidence intervals for one split of a run, or for another dataset."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from osteon.data.adapters import load_dataset
from osteon.data.manifest import Manifest
from osteon.engine.predictor import Predictor
from osteon.engine.rundir import RunDir
from osteon.errors import ConfigError


def evaluate(
    run: str | Path,
    *,
    split: str | None = None,
    data: str | Path | None = None,
    data_format: str | None = None,
    data_options: dict[str, str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict one split and compute the task's metrics with bootstrap CIs (resampled by patient).

    The operating point of binary tasks is the one chosen on the run's validation split during
    training; it is applied unchanged here.

    Args:
        run: A finished run directory.
        split: The run's split to score (default ``test``); with ``data``, only that split of the other
            dataset (default: every labelled image of it, whatever its own split column says).
        data: Another dataset (external validation).
        data_format: Its format (detected when not given).
        data_options: Its adapter options (``image_column``, ``label_column`` ...), as for ``osteon train``.
        n_resamples: Bootstrap resamples for the CIs.
        seed: Bootstrap seed.
        progress: Show progress.

    Writes ``predictions_<key>.csv`` and the ``<key>`` entry of ``metrics.json`` where ``key`` is the
    split, or ``<dataset>-<split>`` / ``<dataset>-all`` for external data. Returns that entry; its
    ``split`` and ``n_images`` say what was scored.
    """
    rundir = RunDir.open(run)
    predictor = Predictor.from_run(rundir.path)
    manifest, key, source = _rows_to_evaluate(rundir, split, data, data_format, data_options or {})
    frame = predictor.predict_manifest(manifest, progress=progress, out_dir=rundir.outputs(key))
    usable = frame[frame["error"] == ""]
    if "truth" not in usable or usable["truth"].isna().all():
        raise ConfigError(
            f"{source}: no ground truth in column {predictor.task.state.target!r}, so nothing to evaluate. "
            "Fix: use `osteon predict` for unlabelled images."
        )
    labelled = usable[usable["truth"].notna()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = predictor.task.evaluate(
            labelled, operating_point=predictor.operating_point, n_resamples=n_resamples, seed=seed
        )
    result["kind"] = result.pop("task", predictor.task.name)
    result = {
        "split": split or ("test" if data is None else "all"),
        "data": source,
        "task": predictor.task.name,
        "n_images": len(labelled),
        "n_patients": int(labelled["patient_id"].nunique()) if "patient_id" in labelled else None,
        "n_unreadable": int((frame["error"] != "").sum()),
        "n_unlabelled": int(len(usable) - len(labelled)),
        "predictions_file": rundir.predictions(key).name,
        "ci": {
            "method": "percentile bootstrap",
            "resampled_by": _unit(labelled),
            "n_resamples": n_resamples,
            "confidence": 0.95,
            "seed": seed,
        },
        **result,
    }
    frame.to_csv(rundir.predictions(key), index=False)
    rundir.update_metrics(key, result)
    return result


def _unit(frame: Any) -> str:
    has_ids = "patient_id" in frame and frame["patient_id"].notna().all()
    return "patient" if has_ids else "image (no patient ids)"


def _rows_to_evaluate(
    run: RunDir, split: str | None, data: str | Path | None, data_format: str | None, options: dict[str, str]
) -> tuple[Manifest, str, str]:
    if data is None:
        split = split or "test"
        manifest = run.load_manifest()
        rows = manifest.frame["split"] == split
        if not rows.any():
            raise ConfigError(f"{run.path}: its split has no {split!r} images. Choose one of train/val/test.")
        return manifest.subset(rows), split, f"{manifest.name} ({split} split of the run)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_dataset(data, format=data_format, **options)
    if split is None:  # external validation scores every labelled image unless a split is asked for
        return manifest, f"{manifest.name}-all", f"{data} (all images)"
    rows = manifest.frame["split"] == split if manifest.has("split") else None
    if rows is None or not rows.any():
        raise ConfigError(
            f"{data}: has no {split!r} split to evaluate. Fix: leave --split out to score every labelled image."
        )
    return manifest.subset(rows.fillna(False)), f"{manifest.name}-{split}", f"{data} ({split} split)"
