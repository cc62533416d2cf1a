"""The one export path of every trainer backend: ``model.pt``, the validation predictions, the operating point.

Lightning and the optional backends (Ultralytics YOLO) train differently but finish the same way, so that
``Predictor.from_run``, ``osteon evaluate`` and the report never know which trainer made a run.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from osteon.engine.checkpoint import save_model_file
from osteon.engine.config import TrainConfig
from osteon.engine.rundir import RunDir
from osteon.tasks import TaskState, build_task
from osteon.tasks.base import Task

#: ``selected_by`` of a model that holds its run's last epoch (every backend).
LAST_EPOCH = "the last epoch (select_epoch: last)"


def export_model(
    run: RunDir,
    cfg: TrainConfig,
    task: Task,
    *,
    state_dict: dict[str, torch.Tensor],
    best_epoch: int,
    best_checkpoint: str,
    selected_by: str | None = None,
) -> None:
    """Write ``model.pt``: the chosen weights with config, task state, preprocessing and the monitor.

    Args:
        run: The run directory (its ``state.json`` is copied into the model's meta).
        cfg: The run's resolved config.
        task: The run's task (its ``monitor`` names the selection metric).
        state_dict: Weights of the model the task builds.
        best_epoch: The epoch the weights come from (0-based, -1 when unknown).
        best_checkpoint: The checkpoint file they were read from, relative to the run.
        selected_by: How the epoch was chosen when not by the task's validation metric (e.g. Ultralytics' fitness).
    """
    meta = {
        "config": cfg.model_dump(mode="json"),
        **run.read_json(run.state),
        "best_epoch": int(best_epoch),
        "best_checkpoint": best_checkpoint,
        "monitor": {"name": task.monitor.name, "direction": task.monitor.direction, "key": "val/score"},
        "selected_by": selected_by or f"validation {task.monitor.name}",
    }
    save_model_file(run.model, state_dict={k: v.contiguous() for k, v in state_dict.items()}, meta=meta)


def calibrate_run(run: RunDir, state: TaskState) -> Task:
    """Save the task state the task chose on validation (``Task.calibrate``) in ``state.json``; the task it builds."""
    record = run.read_json(run.state)
    record["task"] = asdict(state)
    run.write_json(run.state, record)
    return build_task(state)


def export_validation(run: RunDir, task: Task, frame: pd.DataFrame) -> dict[str, Any] | None:
    """Write ``predictions_val.csv`` and the operating point chosen on its labelled rows; return the point."""
    frame.to_csv(run.predictions("val"), index=False)
    usable = frame
    if "error" in usable:
        usable = usable[usable["error"].fillna("") == ""]
    labelled = usable[usable["truth"].notna()] if "truth" in usable else usable.iloc[:0]
    point = task.choose_operating_point(labelled) if len(labelled) else None
    if point is not None:
        run.write_json(run.operating_point, point)
    return point


def record_selection(
    run: RunDir, task: Task, *, best_epoch: int, best_score: float | None, epochs: int, **extra: Any
) -> None:
    """Merge the selected epoch and its validation metric (natural units) into ``training.json``."""
    record = run.read_json(run.training)
    natural = task.monitor.natural(float(best_score)) if best_score is not None else None
    record.update(
        {
            "best_epoch": int(best_epoch),
            "best_score": natural,
            "monitor": {"name": task.monitor.name, "direction": task.monitor.direction},
            "epochs": int(epochs),
            **extra,
        }
    )
    run.write_json(run.training, record)


def relative(path: str | Path, run: RunDir) -> str:
    """``path`` relative to the run directory when inside it (model files never hold absolute paths)."""
    try:
        return str(Path(path).resolve().relative_to(run.path.resolve()))
    except ValueError:
        return Path(path).name
