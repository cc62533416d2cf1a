"""Ensembles: several trained runs of one task combined into a run of its own.

An ensemble run directory looks like any other (``config.yaml``, ``state.json``, ``manifest.csv``, ``model.pt``,
``training.json``), so ``Predictor.from_run``, ``osteon evaluate``, ``explain`` and ``report`` work unchanged.
Its ``model.pt`` holds every member's weights (self-contained: the members' folders may be moved or deleted) and
``meta["ensemble"]`` describes the members (run, model, best epoch, validation score) and how outputs are
combined: the mean of the members' probabilities (values for regression), through the task's
``ensemble_outputs`` hook.

Members must share the task, the classes (in the same order), the target, the positive class and the input size;
covariates must be encoded the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from osteon.data.manifest import Manifest
from osteon.data.splits import save_split_file
from osteon.engine.checkpoint import load_model_file, save_model_file
from osteon.engine.config import TrainConfig
from osteon.engine.rundir import RunDir
from osteon.errors import ConfigError
from osteon.tasks import TaskState, build_task
from osteon.tasks.base import Task

#: How an ensemble's outputs are combined (written to model.pt and training.json).
COMBINATION = "mean of the members' probabilities (values for regression)"


def build_ensemble(
    runs: Sequence[str | Path],
    out: str | Path,
    *,
    manifest: Manifest | None = None,
    operating_frame: pd.DataFrame | None = None,
    operating_note: str | None = None,
    extra: dict[str, Any] | None = None,
    split_note: str | None = None,
    progress: bool = False,
) -> RunDir:
    """Combine finished runs into an ensemble run directory ``out``.

    Args:
        runs: Two or more finished runs of the same task (same classes, target, input size).
        out: The new run directory (never overwritten).
        manifest: The Manifest (with its split) the ensemble is evaluated on; default: the first member's. Rows of
            its ``val`` split get ``predictions_val.csv`` and the operating point, like a trained run.
        operating_frame: A labelled predictions table to choose the operating point on instead of the ``val``
            split (cross-validation: the pooled out-of-fold predictions).
        operating_note: Where ``operating_frame`` comes from (written to ``operating_point.json``).
        extra: Added to ``training.json`` (e.g. the cross-validation summary's file name).
        split_note: How ``manifest``'s split was made (for ``state.json``), when a manifest is given.
        progress: Show progress while predicting ``val``.

    Raises:
        ConfigError: fewer than two runs, or members that cannot be combined (the message names the difference).
        RunDirError: ``out`` already holds a run, or a member has no ``model.pt``.
    """
    if len(runs) < 2:
        raise ConfigError(f"an ensemble needs at least two runs; got {len(runs)}. Fix: pass two or more run folders.")
    RunDir.check_new(out)
    members = [RunDir.open(r) for r in runs]
    payloads = [load_model_file(m.model) for m in members]
    metas = [p["meta"] for p in payloads]
    _check_compatible(members, metas)
    first, first_meta = members[0], metas[0]
    task = build_task(TaskState(**first_meta["task"]))

    run = RunDir.create(out)
    cfg = TrainConfig(**{**first_meta["config"], "out": str(run.path)})
    cfg.save(run.config)
    manifest = manifest if manifest is not None else combined_split(members)
    manifest.save(run.manifest)
    if "split" in manifest.frame:
        save_split_file(manifest, manifest.frame["split"], run.splits)
    state = first.read_json(first.state)
    state["split"] = {
        "source": "ensemble",
        "reason": split_note
        or (
            f"ensemble of {len(members)} runs; each image's split is its most-used role over the members (train "
            "if any member trained on it, else val, else test), so test images are unseen by every member"
        ),
    }
    run.write_json(run.state, state)

    state_dict: dict[str, torch.Tensor] = {}
    described = []
    for i, (member, payload, meta) in enumerate(zip(members, payloads, metas, strict=True)):
        state_dict.update({f"members.{i}.{k}": v for k, v in payload["state_dict"].items()})
        training = member.read_json(member.training)
        described.append(
            {
                "run": str(member.path.resolve()),
                "name": member.path.name,
                "model": meta["config"]["model"],
                "best_epoch": meta.get("best_epoch"),
                "best_score": training.get("best_score"),
                "monitor": (training.get("monitor") or {}).get("name"),
                "config": meta["config"],
                "task": meta["task"],
                "covariate_dim": _covariate_dim(meta),
            }
        )
    ensemble_meta = {
        "members": described,
        "combination": COMBINATION,
        "n_members": len(members),
    }
    meta = {
        **{k: v for k, v in first_meta.items() if k not in ("versions", "ensemble")},
        "config": cfg.model_dump(mode="json"),
        "split": state["split"],
        "best_epoch": -1,
        "best_checkpoint": "",
        "selected_by": "each member by its own validation split",
        "ensemble": ensemble_meta,
    }
    save_model_file(run.model, state_dict=state_dict, meta=meta)
    run.write_json(
        run.training,
        {
            "ensemble": {k: v for k, v in ensemble_meta.items() if k != "members"}
            | {"members": [{k: v for k, v in m.items() if k not in ("config", "task")} for m in described]},
            "best_epoch": None,
            "best_score": None,
            "monitor": {"name": task.monitor.name, "direction": task.monitor.direction},
            "epochs": None,
            "duration_s": sum(float(m.read_json(m.training).get("duration_s") or 0.0) for m in members),
            **(extra or {}),
        },
    )
    _operating_point(run, task, manifest, operating_frame, operating_note, progress=progress)
    return run


def combined_split(members: Sequence[RunDir]) -> Manifest:
    """The first member's Manifest with each image's most-used role over all members as its split.

    An image is ``train`` when any member trained on it, else ``val`` when any member selected on it, else
    ``test`` when it was a test image of some member (otherwise no split): so the ensemble's test images are
    ones no member learnt from, and its operating point is chosen on images no member trained on.
    """
    import numpy as np

    def keyed(m: Manifest) -> list[str]:  # absolute paths: each run stores them relative to its own folder
        return [str(m.resolve(p)) for p in m.frame["image"].astype(str)]

    manifest = members[0].load_manifest()
    keys = keyed(manifest)
    rank = {"test": 1, "val": 2, "train": 3}
    best = np.zeros(len(keys), dtype=np.int64)
    for member in members:
        other = member.load_manifest()
        if "split" not in other.frame:
            continue
        roles = dict(zip(keyed(other), other.frame["split"].map(rank).fillna(0).astype(int), strict=True))
        best = np.maximum(best, np.array([roles.get(k, 0) for k in keys]))
    names = np.array([pd.NA, "test", "val", "train"], dtype=object)[best]
    return manifest.with_columns(split=pd.array(names, dtype="string"))


def _operating_point(
    run: RunDir,
    task: Task,
    manifest: Manifest,
    frame: pd.DataFrame | None,
    note: str | None,
    *,
    progress: bool,
) -> None:
    """Choose the ensemble's operating point on ``frame`` when given, else on the ensemble's own ``val`` rows."""
    if frame is not None:
        labelled = frame[frame["truth"].notna()] if "truth" in frame else frame.iloc[:0]
        point = task.choose_operating_point(labelled) if len(labelled) else None
        if point is not None:
            point["chosen_on"] = note or "given predictions"
            run.write_json(run.operating_point, point)
        return
    if "split" not in manifest.frame or not (manifest.frame["split"] == "val").any():
        return
    from osteon.engine.export import export_validation
    from osteon.engine.predictor import Predictor

    predictor = Predictor.from_run(run.path)
    val = manifest.subset((manifest.frame["split"] == "val").fillna(False))
    table = predictor.predict_manifest(val, progress=progress)
    point = export_validation(run, task, table)
    if point is not None:
        point["chosen_on"] = "val (the ensemble's predictions on the first member's validation split)"
        run.write_json(run.operating_point, point)


def _covariate_dim(meta: dict[str, Any]) -> int:
    from osteon.data.covariates import CovariateEncoder

    return CovariateEncoder.from_dict(meta["covariates"]).dim


def _check_compatible(members: Sequence[RunDir], metas: Sequence[dict[str, Any]]) -> None:
    """Refuse members that do not predict the same thing from the same input."""
    ref, ref_run = metas[0], members[0].path
    for run, meta in zip(members[1:], metas[1:], strict=True):
        checks = [
            ("task", ref["task"]["name"], meta["task"]["name"]),
            ("target", ref["task"]["target"], meta["task"]["target"]),
            ("classes", ref["task"].get("class_names"), meta["task"].get("class_names")),
            ("positive class", ref["task"].get("positive_class"), meta["task"].get("positive_class")),
            ("input size", ref["preprocessing"], meta["preprocessing"]),
            ("covariates", ref["covariates"], meta["covariates"]),
        ]
        for what, a, b in checks:
            if a != b:
                raise ConfigError(
                    f"{run.path} cannot join an ensemble with {ref_run}: their {what} differ ({a!r} vs {b!r}). "
                    "Fix: ensemble runs trained for the same task, classes, target and input size."
                )
        if meta.get("ensemble"):
            raise ConfigError(f"{run.path} is itself an ensemble. Fix: pass its member runs instead.")
    if ref.get("ensemble"):
        raise ConfigError(f"{ref_run} is itself an ensemble. Fix: pass its member runs instead.")
