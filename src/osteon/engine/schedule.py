"""When training stops and when it validates: a wall-clock budget and a validation schedule (Lightning callbacks).

* :class:`TimeBudget` trains for a number of minutes instead of a number of epochs (Ultralytics' ``time=``).
* :class:`ValidationSchedule` validates every ``val_every`` epochs and always at the last one, and can cap the share
  of the time spent validating (``val_max_share``). Validation runs on whole images while a detector or segmenter
  may train on small crops, so one pass over a validation split can cost as much as a training epoch; with
  ``select_epoch: last`` it only draws the learning curve.

Both decide at the epoch's last training batch, before Lightning's validation check, so the schedule knows
whether the epoch is the last one while it can still validate it (``TimeBudget`` must come first in the
callback list).
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch


def _last_batch(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether ``batch_idx`` is the epoch's last training batch (never, for a loader without a length)."""
    batches = trainer.num_training_batches
    return math.isfinite(batches) and batch_idx + 1 >= batches


class TimeBudget(L.Callback):
    """Train for a wall-clock budget instead of a fixed number of epochs (Ultralytics' ``time=``).

    At the end of every epoch's training batches the number of epochs is re-planned from the mean epoch time
    so far (earlier epochs' validations included): ``epochs done + whole epochs that fit in the time left``. A
    cosine schedule is re-planned with it, so the learning rate still reaches zero at the last epoch. The
    budget counts this session only (a resumed run gets the budget again); the last epoch's validation may
    run past it.
    """

    def __init__(self, seconds: float, *, first_plan: int = 1) -> None:
        self.seconds = seconds
        self.first_plan = first_plan  # the epochs shown until the first epoch has been timed (``--epochs``)
        self._started: float | None = None
        self._first_epoch = 0
        self._planned_epoch = -1  # the epoch whose plan is made (at its last batch, or at its end as a fallback)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()
        self._first_epoch = trainer.current_epoch
        # the Trainer starts unbounded (so a resumed run is never "done" before its budget); show a finite plan
        trainer.fit_loop.max_epochs = max(self.first_plan, trainer.current_epoch + 1)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if _last_batch(trainer, batch_idx):
            self._plan(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._planned_epoch != trainer.current_epoch:
            self._plan(trainer)
        if trainer.fit_loop.max_epochs <= trainer.current_epoch + 1:
            trainer.should_stop = True

    def _plan(self, trainer: L.Trainer) -> None:
        if self._started is None:
            return
        elapsed = time.perf_counter() - self._started
        done = trainer.current_epoch + 1
        per_epoch = elapsed / max(1, done - self._first_epoch)
        planned = done + max(0, int((self.seconds - elapsed) // per_epoch))
        # every process of a multi-GPU run follows rank 0's clock: ranks that disagreed on the last epoch (and
        # so on whether to validate) would wait for each other forever
        planned = int(trainer.strategy.broadcast(planned, src=0))
        trainer.fit_loop.max_epochs = planned
        self._planned_epoch = trainer.current_epoch
        for config in trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                config.scheduler.T_max = max(planned, 1)


class ValidationSchedule(L.Callback):
    """Validate every ``every`` epochs and at the last planned epoch (``max_epochs``, re-planned by a time budget),
    so that the weights a run ends with always have a validation score.

    ``max_share`` (optional) caps the share of the time spent validating: a scheduled validation is skipped while
    the validations so far plus one more would take more than ``max_share`` of the time this session has trained
    (validations included). The validations then spread out evenly however long one takes (a large validation
    split, whole images against training crops, several processes sharing the CPU); the first scheduled one
    always runs, to measure the cost, and so does the last.
    """

    def __init__(self, every: int, *, max_share: float | None = None) -> None:
        if every < 1:
            raise ValueError(f"every={every}: validate every 1 or more epochs.")
        if max_share is not None and not 0 < max_share <= 1:
            raise ValueError(f"max_share={max_share}: give a share of the training time in (0, 1].")
        self.every = every
        self.max_share = max_share
        self._started: float | None = None
        self._validation_started: float | None = None
        self._spent = 0.0  # seconds validating in this session
        self._validations = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validation_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._validation_started is not None:
            self._spent += time.perf_counter() - self._validation_started
            self._validations += 1
            self._validation_started = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not _last_batch(trainer, batch_idx):
            return
        epoch = trainer.current_epoch
        planned = trainer.fit_loop.max_epochs
        last = planned is not None and planned >= 0 and epoch + 1 >= planned
        scheduled = (epoch + 1) % self.every == 0
        affordable = scheduled and self._affordable()
        if self.max_share is not None:  # rank 0's clock decides: ranks that disagreed would wait for each other
            affordable = bool(trainer.strategy.broadcast(affordable, src=0))
        # Lightning validates when (epoch + 1) % check_val_every_n_epoch == 0
        if last or affordable:
            trainer.check_val_every_n_epoch = 1
        elif scheduled:  # over the share: skip this one (epoch + 2 never divides epoch + 1)
            trainer.check_val_every_n_epoch = epoch + 2
        else:
            trainer.check_val_every_n_epoch = self.every

    def _affordable(self) -> bool:
        """Whether one more validation keeps the time spent validating within ``max_share`` of the time so far."""
        if self.max_share is None or not self._validations or self._started is None:
            return True
        elapsed = time.perf_counter() - self._started
        return self._spent * (1 + 1 / self._validations) <= self.max_share * elapsed
