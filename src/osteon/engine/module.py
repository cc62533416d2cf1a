"""The Lightning module: the training loop around a Task. It knows batches and losses, never boxes or masks."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn

from osteon.engine.config import TrainConfig
from osteon.tasks.base import Task


class TaskModule(L.LightningModule):
    """Wraps ``model`` and ``task``: loss from the task, a validation score from the task, optimiser from config.

    Logs ``train/loss``, ``val/loss`` and ``val/score`` (the task's higher-is-better validation
    metric: AUC, quadratic kappa or −MAE), which checkpointing and early stopping monitor.
    """

    def __init__(
        self, task: Task, model: nn.Module, cfg: TrainConfig, *, class_weights: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.task = task
        self.model = model
        self.cfg = cfg
        self.register_buffer("class_weights", class_weights if cfg.class_weighting == "loss" else None)
        self._val_scores: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @property
    def backbone(self) -> nn.Module:
        """The feature extractor (Lightning's BackboneFinetuning freezes it)."""
        return self.model.backbone  # type: ignore[return-value]

    def forward(self, image: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return self.model(image, covariates)

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self(batch["image"], batch.get("covariates"))
        return outputs, self.task.loss(outputs, batch["target"], self.class_weights)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        _, loss = self._step(batch)
        self.log(
            "train/loss",
            loss,
            prog_bar=True,
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["image"]),
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        outputs, loss = self._step(batch)
        self.log("val/loss", loss, prog_bar=False, on_epoch=True, batch_size=len(batch["image"]), sync_dist=True)
        self._val_scores.append(torch.as_tensor(self.task.scores(outputs), device=self.device))
        self._val_targets.append(batch["target"])

    def on_validation_epoch_end(self) -> None:
        if not self._val_scores:
            return
        scores, targets = torch.cat(self._val_scores), torch.cat(self._val_targets)
        self._val_scores, self._val_targets = [], []
        if self.trainer.world_size > 1:  # score on every rank's predictions
            scores = self.all_gather(scores).flatten(0, 1)
            targets = self.all_gather(targets).flatten(0, 1)
        value = self.task.monitor_score(scores.float().cpu().numpy(), targets.cpu().numpy())
        if not np.isfinite(value):
            value = -1e9  # undefined (e.g. one class in a tiny val split): never the best epoch
        self.log("val/score", float(value), prog_bar=True, sync_dist=False, rank_zero_only=False)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        params = [p for p in self.parameters() if p.requires_grad]
        if self.cfg.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                params, lr=self.cfg.lr, momentum=0.9, weight_decay=self.cfg.weight_decay, nesterov=True
            )
        else:
            optimizer = torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        if self.cfg.scheduler == "none":
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.cfg.epochs))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
