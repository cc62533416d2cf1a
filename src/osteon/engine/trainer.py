"""Building the Lightning Trainer from a config: devices, precision, callbacks, loggers."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import BackboneFinetuning, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger

from osteon.engine.config import TrainConfig
from osteon.engine.rundir import RunDir


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto``: bf16 autocast on GPUs that support it, full fp32 elsewhere.

    bf16 on CPU is opt-in (``--precision bf16-mixed``): it only pays off on CPUs with native bf16
    (AVX-512 BF16 / AMX); ``benchmarks/engine_overhead.py`` measures it.
    """
    if precision != "auto":
        return precision if precision != "32" else "32-true"
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _devices(value: str) -> int | str | list[int]:
    if value == "auto":
        return "auto"
    if "," in value:
        return [int(v) for v in value.split(",") if v.strip()]
    return int(value)


def build_trainer(
    cfg: TrainConfig, run: RunDir, *, callbacks: Sequence[L.Callback] = (), progress: bool = True
) -> tuple[L.Trainer, ModelCheckpoint]:
    """The Trainer and its best-checkpoint callback (``best.ckpt`` on ``val/score``; ``last.ckpt`` every epoch)."""
    best = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="best",
        monitor="val/score",
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
    )
    # Its own callback: Lightning's save_last only writes when a new best was saved, which would
    # make --resume restart from the best epoch instead of the latest one.
    last = ModelCheckpoint(
        dirpath=run.checkpoints, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
    )
    all_callbacks: list[L.Callback] = [best, last, *callbacks]
    if progress:  # on stderr, so that stdout stays machine-readable (run path, --json)
        all_callbacks.append(RichProgressBar(console_kwargs={"stderr": True}))
    if cfg.early_stopping_patience:
        all_callbacks.append(EarlyStopping(monitor="val/score", mode="max", patience=cfg.early_stopping_patience))
    if cfg.freeze_backbone_epochs:
        all_callbacks.append(BackboneFinetuning(unfreeze_backbone_at_epoch=cfg.freeze_backbone_epochs, verbose=False))
    loggers: list[Logger] = [CSVLogger(run.logs, name="", version="")]
    if importlib.util.find_spec("tensorboard") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run.logs, name="tensorboard", version=""))
    if importlib.util.find_spec("mlflow") is not None:
        from lightning.pytorch.loggers import MLFlowLogger

        loggers.append(
            MLFlowLogger(experiment_name="osteon", run_name=run.path.name, tracking_uri=f"file:{run.logs / 'mlruns'}")
        )
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=_devices(cfg.devices),
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=resolve_precision(cfg.precision, cfg.accelerator),  # type: ignore[arg-type]
        deterministic=cfg.deterministic,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        callbacks=all_callbacks,
        logger=loggers,
        default_root_dir=run.path,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    return trainer, best
