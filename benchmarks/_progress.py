"""A Lightning callback that prints one line per epoch (time, train loss, validation score) for nohup logs."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from _common import log


class EpochLog(L.Callback):
    """Prints and keeps ``{"epoch", "seconds", "train_loss", "val_score"}`` for every epoch (``val_score`` None
    for an epoch that did not validate, ``val_every``)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.epochs: list[dict[str, Any]] = []
        self._start = 0.0
        self._losses: list[float] = []
        self._validated = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._losses = []
        self._validated = False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = not trainer.sanity_checking

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(float(loss))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning 2 runs validation before this hook, so val/score is this epoch's.
        metrics = trainer.callback_metrics
        row = {
            "epoch": trainer.current_epoch,
            "seconds": round(time.perf_counter() - self._start, 2),
            "train_loss": round(sum(self._losses) / len(self._losses), 4) if self._losses else None,
            "val_score": _value(metrics.get("val/score")) if self._validated else None,
        }
        self.epochs.append(row)
        log(
            f"{self.label} epoch {row['epoch'] + 1}/{trainer.max_epochs}: {row['seconds']:.1f} s, "
            f"train loss {row['train_loss']}, val/score {row['val_score']}"
        )


def _value(x: Any) -> float | None:
    return None if x is None else round(float(x), 4)
