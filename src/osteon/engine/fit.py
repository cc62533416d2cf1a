"""``train``: build everything a run needs from its config, fit with Lightning, export the best model."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from osteon.data.covariates import CovariateEncoder
from osteon.data.datasets import DecodedImages, decode_images
from osteon.data.manifest import Manifest
from osteon.data.transforms import Preprocessing, build_augmentation
from osteon.engine.backends import get_backend
from osteon.engine.checkpoint import check_training_checkpoint
from osteon.engine.config import TrainConfig, is_ddp_child
from osteon.engine.export import LAST_EPOCH, calibrate_run, export_model, export_validation, record_selection
from osteon.engine.module import TaskModule
from osteon.engine.prepare import excluded_rows, prepare_run
from osteon.engine.rundir import RunDir
from osteon.engine.trainer import build_trainer
from osteon.errors import ConfigError, RunDirError
from osteon.tasks import TaskState, build_task
from osteon.tasks.base import Task


def train(
    cfg: TrainConfig | None = None,
    *,
    resume: str | Path | None = None,
    callbacks: Sequence[L.Callback] = (),
    progress: bool = True,
    **overrides: Any,
) -> RunDir:
    """Train a model and return its run directory.

    Args:
        cfg: The configuration (or pass its fields as keyword ``overrides``).
        resume: A run directory whose ``checkpoints/last.ckpt`` to continue from; its saved config is
            used, with ``overrides`` (e.g. ``epochs=20`` to extend) applied on top.
        callbacks: Extra Lightning callbacks.
        progress: Show progress bars.

    Returns:
        The run directory (``model.pt`` holds the best epoch's weights).

    Raises:
        RunDirError: ``cfg.out`` already holds a run, or ``resume`` has no checkpoint.
        ConfigError: the config does not fit the data (unknown column, too few classes ...).

    Example:
        >>> run = train(task="classify", data="phantoms/manifest.csv", model="tiny_cnn", epochs=1,
        ...             image_size=64, out="runs/demo")  # doctest: +SKIP
    """
    if resume is not None:
        run = RunDir.open(resume, need_model=False)
        if not run.last_checkpoint.is_file():
            raise RunDirError(f"{resume}: no checkpoints/last.ckpt to resume from; the run never finished an epoch.")
        check_training_checkpoint(run.last_checkpoint)  # a truncated copy names the file, not a torch traceback
        from osteon.engine.resume import after_resume, before_resume

        cfg = TrainConfig(**{**TrainConfig.load(run.config).model_dump(), **_given(overrides)})
        previous = before_resume(run, cfg)  # refuses a run with no epochs left; copies a finished run's model.pt
        cfg.save(run.config)
        finished = False
        try:  # the checkpoint restores weights, optimiser, schedule, random state, log and time of earlier sessions
            _fit(run, cfg, ckpt_path=run.last_checkpoint, callbacks=callbacks, progress=progress)
            finished = True
        finally:
            after_resume(run, previous, finished=finished)  # keeps the old model.pt only when it was replaced
        return run
    if cfg is None:
        cfg = TrainConfig.from_sources(**overrides)
    elif overrides:
        cfg = TrainConfig(**{**cfg.model_dump(exclude_unset=True), **_given(overrides)})  # unset stays unset
    cfg = with_recipe_defaults(cfg)
    if is_ddp_child():
        run = RunDir.open(cfg.out, need_model=False)
        last = run.last_checkpoint if run.last_checkpoint.is_file() else None
        return _fit(run, cfg, ckpt_path=last, callbacks=callbacks, progress=progress)
    run = prepare_run(cfg)  # validates everything before the run directory is made
    return _fit(run, cfg, ckpt_path=None, callbacks=callbacks, progress=progress)


def with_recipe_defaults(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the task's recipe defaults (``Task.recipe_defaults``) for the fields the user left unset."""
    from osteon.tasks import TASKS

    defaults = TASKS.get(cfg.task).recipe_defaults(cfg)
    unset = {k: v for k, v in defaults.items() if k not in cfg.model_fields_set}
    return TrainConfig(**{**cfg.model_dump(exclude_unset=True), **unset}) if unset else cfg


def _given(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if v is not None}


def _fit(
    run: RunDir, cfg: TrainConfig, *, ckpt_path: Path | None, callbacks: Sequence[L.Callback], progress: bool
) -> RunDir:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = run.read_json(run.state)
    task = build_task(TaskState(**state["task"]))
    if task.trainer_backend != "lightning":  # another trainer (detect: Ultralytics YOLO), same export path
        return get_backend(task.trainer_backend)(run, cfg, task, resume=ckpt_path is not None, progress=progress)
    prep = Preprocessing(**state["preprocessing"])
    encoder = CovariateEncoder.from_dict(state["covariates"])
    manifest = run.load_manifest()

    datasets, excluded = _build_datasets(manifest, task, prep, encoder, cfg, progress=progress)
    if not is_ddp_child() and len(excluded):
        excluded.to_csv(run.excluded, index=False)
        warnings.warn(f"{len(excluded)} images left out of training; see {run.excluded}.", stacklevel=2)
    train_targets = _train_targets(datasets["train"])
    class_weights = task.class_weights(train_targets) if train_targets is not None else None
    pretrained = cfg.pretrained if ckpt_path is None else None  # a resumed run's checkpoint holds every weight
    model = task.build_model(model=cfg.model, pretrained=pretrained, covariate_dim=encoder.dim, dropout=cfg.dropout)
    module = TaskModule(task, model, cfg, class_weights=class_weights)
    trainer, best = build_trainer(cfg, run, callbacks=callbacks, progress=progress)
    loaders = _loaders(datasets, task, cfg, class_weights)
    started = time.perf_counter()
    trainer.fit(module, loaders["train"], loaders["val"], ckpt_path=ckpt_path)
    duration = time.perf_counter() - started
    if not trainer.is_global_zero:
        return run
    last_score = trainer.callback_metrics.get("val/score")  # the last validated epoch's monitor value
    _export(run, cfg, module, best, datasets["val"], manifest, last_score=last_score)
    _record_training(run, cfg, trainer, duration, resumed=ckpt_path is not None)
    return run


def _build_datasets(
    manifest: Manifest,
    task: Task,
    prep: Preprocessing,
    encoder: CovariateEncoder,
    cfg: TrainConfig,
    *,
    progress: bool,
) -> tuple[dict[str, Dataset], pd.DataFrame]:
    """Train and val datasets of the usable rows, and the rows left out with their reasons."""
    missing = task.missing_targets(manifest)
    covariates = encoder.transform(manifest.frame) if encoder.columns else None
    augment = (
        build_augmentation(
            hflip=cfg.hflip,
            rotate_degrees=cfg.rotate_degrees,
            scale_range=cfg.scale_range,
            brightness=cfg.brightness,
            contrast=cfg.contrast,
            gamma=cfg.gamma,
        )
        if cfg.augment
        else None
    )
    split = manifest.frame["split"].fillna("").to_numpy()  # rows without a split (NA) are in no part
    datasets: dict[str, Dataset] = {}
    excluded = [excluded_rows(manifest.frame, np.flatnonzero(missing), "no value in the target column")]
    for name in ("train", "val"):
        rows = np.flatnonzero((split == name) & ~missing)
        decoded = decode_images(
            manifest.paths_of(rows), prep, workers=max(2, cfg.num_workers), progress=progress, description=name
        )
        if decoded.errors:
            bad = sorted(decoded.errors)
            excluded.append(excluded_rows(manifest.frame, rows[bad], [decoded.errors[i] for i in bad]))
        keep = decoded.readable()
        if len(keep) == 0:
            raise ConfigError(f"{manifest.name}: no usable {name} images (all unreadable or unlabelled).")
        decoded = DecodedImages(decoded.stack[keep], [decoded.geometry[i] for i in keep], {})
        rows = rows[keep]
        datasets[name] = task.make_dataset(
            manifest,
            rows,
            decoded,
            covariates=covariates[rows] if covariates is not None else None,
            augment=augment if name == "train" else None,
            prep=prep,
        )
    return datasets, pd.concat(excluded, ignore_index=True)


def _loaders(datasets: dict[str, Dataset], task: Task, cfg: TrainConfig, class_weights: torch.Tensor | None) -> dict:
    common = {
        "batch_size": cfg.batch_size,
        "num_workers": cfg.num_workers,
        "persistent_workers": cfg.num_workers > 0,
        "collate_fn": task.collate_fn,
    }
    sampler = None
    train_targets = _train_targets(datasets["train"])
    if cfg.class_weighting == "sampler" and class_weights is not None and train_targets is not None:
        per_sample = class_weights[torch.as_tensor(train_targets).long()].double()
        sampler = WeightedRandomSampler(per_sample, num_samples=len(per_sample), replacement=True)
    return {
        "train": DataLoader(datasets["train"], shuffle=sampler is None, sampler=sampler, drop_last=False, **common),
        "val": DataLoader(datasets["val"], shuffle=False, **common),
    }


def _train_targets(dataset: Dataset) -> np.ndarray | None:
    """Per-image class targets of a dataset when it has them (for class weights and the sampler)."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    targets = np.asarray(targets)
    return targets if targets.ndim == 1 and targets.dtype.kind in "iu" else None


def _export(
    run: RunDir,
    cfg: TrainConfig,
    module: TaskModule,
    best: ModelCheckpoint,
    val_set: Dataset,
    manifest: Manifest,
    *,
    last_score: torch.Tensor | None,
) -> None:
    """Write model.pt (the best epoch, or the last with ``select_epoch: last``, with the post-processing the task
    chooses on validation), the validation predictions and the operating point chosen on them."""
    if cfg.select_epoch == "last":
        chosen, score, selected_by = run.last_checkpoint, last_score, LAST_EPOCH
    else:
        chosen, score, selected_by = Path(best.best_model_path or run.last_checkpoint), best.best_model_score, None
    ckpt = torch.load(chosen, map_location="cpu", weights_only=False)  # our own checkpoint, written by this run
    weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    module.model.load_state_dict(weights)
    best_epoch = int(ckpt.get("epoch", -1))
    frame = module.task.predict_rows(module.model, manifest, val_set, batch_size=cfg.batch_size)
    calibrated = module.task.calibrate(frame)
    if calibrated is not None:  # post-processing chosen on validation: the model keeps it, validation is redone
        module.task = calibrate_run(run, calibrated)
        frame = module.task.predict_rows(module.model, manifest, val_set, batch_size=cfg.batch_size)
    export_model(
        run,
        cfg,
        module.task,
        state_dict=module.model.state_dict(),
        best_epoch=best_epoch,
        best_checkpoint=chosen.name,
        selected_by=selected_by,
    )
    export_validation(run, module.task, frame)
    record_selection(
        run,
        module.task,
        best_epoch=best_epoch,
        best_score=float(score) if score is not None and float(score) > -1e8 else None,
        epochs=cfg.epochs,
        best_checkpoint=chosen.name,
        select_epoch=cfg.select_epoch,
    )


def _record_training(run: RunDir, cfg: TrainConfig, trainer: L.Trainer, duration: float, *, resumed: bool) -> None:
    """Add wall time, sessions and hardware to training.json.

    ``duration_s`` is the training time of every session: a resumed run adds this session's ``duration`` to the
    earlier sessions' times, which the checkpoint keeps (:class:`~osteon.engine.callbacks.TrainingClock`; a
    session that crashed counts up to its last checkpoint). ``sessions`` lists them (0-based epochs).
    """
    import os
    import platform

    from osteon.engine.callbacks import TrainingClock

    record = run.read_json(run.training)
    clock = next((cb for cb in trainer.callbacks if isinstance(cb, TrainingClock)), None)
    if clock is not None:
        sessions = [*clock.previous, clock.current(int(trainer.current_epoch) - 1, duration)]
    else:
        sessions = [*(record.get("sessions", []) if resumed else []), {"duration_s": round(duration, 1)}]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    record.update(
        {
            "duration_s": round(sum(float(s.get("duration_s", 0.0)) for s in sessions), 1),
            "sessions": sessions,
            "epochs_run": int(trainer.current_epoch),
            "hardware": {
                "accelerator": "gpu" if gpu else "cpu",
                "gpu": gpu,
                "devices": trainer.num_devices,
                "num_nodes": cfg.num_nodes,
                "cpu_count": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "torch_threads": torch.get_num_threads(),
                "precision": str(trainer.precision),
            },
        }
    )
    run.write_json(run.training, record)
