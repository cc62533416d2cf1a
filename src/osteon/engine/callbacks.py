"""Callbacks that make ``--resume`` continue a run as if it had never stopped.

* :class:`RandomState` stores the random number generators (Python, NumPy, torch CPU/CUDA and the train
  DataLoader's own generators) in every checkpoint and puts them back when a run resumes, so that shuffling,
  augmentation and dropout after the resume draw what the uninterrupted run would have drawn.
* :class:`TrainingClock` stores the wall time of the earlier sessions, so that ``training.json`` adds them up.
* :class:`ResumableCSVLogger` keeps ``logs/metrics.csv`` across sessions (Lightning's CSV logger deletes it);
  :class:`ResumeLogs` tells it the epoch training resumes at.

The train loaders are found through Lightning's fit loop (``_combined_loader``, ``_data_source``): private
attributes, pinned by ``tests/engine/test_resume.py``.
"""

from __future__ import annotations

import csv
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from torch.utils.data import DataLoader


def _train_loaders(trainer: L.Trainer) -> list[DataLoader]:
    """The train DataLoader(s): those Lightning set up, or (before set-up, on restore) those given to ``fit``."""
    if trainer.fit_loop._combined_loader is not None:
        source: Any = trainer.fit_loop._combined_loader.flattened
    else:
        source = getattr(trainer.fit_loop._data_source, "instance", None)
    if isinstance(source, dict):
        source = list(source.values())
    elif not isinstance(source, list | tuple):
        source = [source]
    return [loader for loader in source if isinstance(loader, DataLoader)]


def _train_generators(trainer: L.Trainer) -> list[torch.Generator]:
    """The ``torch.Generator`` objects of the train DataLoader(s) and their samplers, in a fixed order.

    A DataLoader without its own generator (``generator=None``) shuffles and samples (``RandomSampler``,
    ``WeightedRandomSampler``) from the global torch generator, which :func:`capture_rng` already holds.
    """
    found: list[torch.Generator] = []
    for loader in _train_loaders(trainer):
        batch_sampler = getattr(loader, "batch_sampler", None)
        candidates = (loader, loader.sampler, batch_sampler, getattr(batch_sampler, "sampler", None))
        for owner in candidates:
            generator = getattr(owner, "generator", None)
            if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
                found.append(generator)
    return found


def capture_rng(trainer: L.Trainer | None = None) -> dict[str, Any]:
    """The states of every random number generator training draws from."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {  # plain types and tensors only: checkpoints load with torch's weights_only=True
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if trainer is not None:
        state["loader_generators"] = [g.get_state() for g in _train_generators(trainer)]
    return state


def restore_rng(state: dict[str, Any], trainer: L.Trainer | None = None) -> None:
    """Put back the generator states of :func:`capture_rng`."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if trainer is not None:
        for generator, saved in zip(_train_generators(trainer), state.get("loader_generators", []), strict=False):
            generator.set_state(saved)


class RandomState(L.Callback):
    """Saves the random state in each checkpoint and restores it when training resumes from one.

    The state is taken when the checkpoint is written at the end of an epoch; nothing draws random numbers
    between then and the next epoch's train DataLoader iterator (its worker seed, the sampler's shuffling
    seed, the first batch's augmentation). It is put back as soon as Lightning restores the callbacks, before
    it creates that iterator (on resume Lightning creates it before ``on_train_epoch_start``). ``--resume``
    therefore equals the uninterrupted run on one device with ``num_workers=0`` or non-persistent workers
    (whose seeds come from the restored torch generator). Not restored exactly: persistent DataLoader workers
    (their generators continue in the uninterrupted run but start afresh in the resumed one), and runs on
    several devices (Lightning saves rank 0's callback state, so every rank gets rank 0's generators).
    """

    def __init__(self) -> None:
        self._trainer: L.Trainer | None = None

    @property
    def state_key(self) -> str:
        return "osteon.RandomState"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        return {"rng": capture_rng(self._trainer)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "rng" in state_dict:
            restore_rng(state_dict["rng"], self._trainer)


class TrainingClock(L.Callback):
    """Keeps the wall time of every training session in the checkpoints, so that resumed runs add up.

    A session that crashed counts up to its last checkpoint (the time after it was lost with the crash).
    """

    def __init__(self) -> None:
        self.previous: list[dict[str, Any]] = []
        self._started: float | None = None
        self._started_at = ""
        self._first_epoch = 0

    @property
    def state_key(self) -> str:
        return "osteon.TrainingClock"

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()
        self._started_at = datetime.now(UTC).isoformat(timespec="seconds")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_epoch = trainer.current_epoch  # restored by now

    def current(self, last_epoch: int, duration_s: float | None = None) -> dict[str, Any]:
        """This session: start time, first and last epoch (0-based) and wall time so far (or ``duration_s``)."""
        if duration_s is None:
            duration_s = time.perf_counter() - self._started if self._started is not None else 0.0
        return {
            "started_at": self._started_at,
            "first_epoch": self._first_epoch,
            "last_epoch": last_epoch,
            "duration_s": round(duration_s, 1),
        }

    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        last = trainer.current_epoch if trainer is not None else self._first_epoch
        return {"sessions": [*self.previous, self.current(last)]}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.previous = list(state_dict.get("sessions", []))


class _MergingWriter(ExperimentWriter):
    """Lightning's CSV writer without the deletion of an existing ``metrics.csv``: old rows are kept."""

    def _check_log_dir_exists(self) -> None:
        self.kept: list[dict[str, str]] = []
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as file:
                self.kept = list(csv.DictReader(file))
            self.metrics_keys = sorted({key for row in self.kept for key in row})
        self._merged = not self.kept

    def drop_from_epoch(self, epoch: int) -> None:
        """Forget kept rows of ``epoch`` and later (logged after the checkpoint a run resumes from)."""
        self.kept = [row for row in self.kept if not row.get("epoch") or int(float(row["epoch"])) < epoch]
        self._merged = False

    def save(self) -> None:
        if not self._merged and self.metrics:
            self._record_new_keys()
            with open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(self.kept)
            self._merged = True
        super().save()


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that continues ``metrics.csv`` on resume: every epoch once, in order.

    Rows of epochs at or after the epoch training resumes at (logged by a session that stopped before
    checkpointing them) are replaced by the resumed session's rows.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _MergingWriter(log_dir=self.log_dir)
        return self._experiment

    def resume_at(self, epoch: int) -> None:
        """Training (re)starts at ``epoch``: rows logged for it or later epochs are dropped."""
        writer = self.experiment
        if isinstance(writer, _MergingWriter):
            writer.drop_from_epoch(epoch)


class ResumeLogs(L.Callback):
    """Tells :class:`ResumableCSVLogger` the epoch training starts at, once the checkpoint is restored."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, ResumableCSVLogger):
                logger.resume_at(trainer.current_epoch)
