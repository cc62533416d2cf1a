"""The Lightning module: the training loop around a Task. It knows batches and losses, never boxes or masks."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from osteon.engine.config import TrainConfig
from osteon.models.test_time import single_pass
from osteon.tasks.base import Task


class TaskModule(L.LightningModule):
    """Wraps ``model`` and ``task``: loss from the task, a validation score from the task, optimiser from config.

    Logs ``train/loss`` and ``val/score`` (the task's higher-is-better validation
    metric: AUC, quadratic kappa or −MAE), which checkpointing and early stopping monitor, and the same
    metric under its own name and sign (``task.monitor``: ``val/AUC``, ``val/QWK``, ``val/MAE``), which the
    progress bar shows.
    """

    def __init__(
        self, task: Task, model: nn.Module, cfg: TrainConfig, *, class_weights: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.task = task
        self.model = model
        self.cfg = cfg
        self.register_buffer("class_weights", class_weights if cfg.class_weighting == "loss" else None)
        self._val_records: list[object] = []
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @property
    def backbone(self) -> nn.Module:
        """The feature extractor (Lightning's BackboneFinetuning freezes it)."""
        return self.model.backbone  # type: ignore[return-value]

    def forward(self, image: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(image, covariates)

    def _prepare(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.cfg.channels_last and isinstance(batch, dict) and "image" in batch:
            batch = {**batch, "image": batch["image"].contiguous(memory_format=torch.channels_last)}
        return batch

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.task.training_loss(self.model, self._prepare(batch), self.class_weights)
        self.log(
            "train/loss",
            loss,
            prog_bar=True,
            on_step=False,
            on_epoch=True,
            batch_size=_batch_size(batch),
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # One pass per image: this validation only monitors training; a model's test-time flips are for its
        # predictions (export, predict and the validation predictions after training keep them).
        with single_pass(self.model):
            self._val_records.extend(self.task.validation_records(self.model, self._prepare(batch)))

    def on_validation_epoch_end(self) -> None:
        records, self._val_records = self._val_records, []
        if self.trainer.world_size > 1:  # score on every rank's records
            gathered: list[list[object]] = [[] for _ in range(self.trainer.world_size)]
            torch.distributed.all_gather_object(gathered, records)
            records = [r for part in gathered for r in part]
        if not records:
            return
        value = float(self.task.monitor_records(records))
        monitor = getattr(self.task, "monitor", None)
        named = monitor is not None and monitor.name != "score"
        if named:  # the metric under its own name and value for the bar and logs: val/AUC, val/MAE
            natural = monitor.natural(value) if np.isfinite(value) else float("nan")
            self.log(f"val/{monitor.name}", natural, prog_bar=True, sync_dist=False, rank_zero_only=False)
        if not np.isfinite(value):
            value = -1e9  # undefined (e.g. one class in a tiny val split): never the best epoch
        self.log("val/score", value, prog_bar=not named, sync_dist=False, rank_zero_only=False)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming with another ``epochs`` (a finished run extended): re-plan the cosine schedule.

        The checkpoint's schedule was planned for the earlier number of epochs; continued as is, a cosine
        that already reached zero rises again. Instead it follows the cosine planned for the new number of
        epochs from the resumed epoch on (the rate is set to that curve's value there), so an extended run
        ends at a low rate. A resume with the same ``epochs`` (after a crash) is unchanged.
        """
        if self.cfg.scheduler != "cosine":
            return
        t_max = max(1, self.cfg.epochs)
        optimizers = checkpoint.get("optimizer_states") or []
        for state in checkpoint.get("lr_schedulers") or []:
            if "T_max" not in state or state["T_max"] == t_max:
                continue
            epoch, eta_min = state["last_epoch"], state.get("eta_min", 0.0)
            rates = [
                eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / t_max)) / 2 for base in state["base_lrs"]
            ]
            state["T_max"], state["_last_lr"] = t_max, rates
            if optimizers:
                for group, rate in zip(optimizers[0]["param_groups"], rates, strict=False):
                    group["lr"] = rate

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        params = [p for p in self.parameters() if p.requires_grad]
        if self.cfg.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                params, lr=self.cfg.lr, momentum=0.9, weight_decay=self.cfg.weight_decay, nesterov=True
            )
        else:
            # the fused kernel updates every tensor in one pass: on a CPU 3-4x faster than the per-tensor loop, which
            # took 7-9 % of a small detector's training step (docs/decisions.md)
            fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params) or None
            optimizer = torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=fused)
        if self.cfg.scheduler == "none":
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.cfg.epochs))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def _batch_size(batch: object) -> int:
    if isinstance(batch, dict) and "image" in batch:
        return len(batch["image"])
    return len(batch)  # type: ignore[arg-type]
