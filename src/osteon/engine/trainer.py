"""Building the Lightning Trainer from a config: devices, precision, callbacks, loggers."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BackboneFinetuning, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.callbacks.weight_averaging import EMAWeightAveraging
from lightning.pytorch.loggers import Logger

from osteon.engine.callbacks import RandomState, ResumableCSVLogger, ResumeLogs, TrainingClock
from osteon.engine.config import TrainConfig
from osteon.engine.rundir import RunDir
from osteon.engine.schedule import TimeBudget, ValidationSchedule

UNBOUNDED_EPOCHS = 100_000  # the Trainer's limit under a time budget, until the first epoch re-plans it

# Lightning's info lines (GPU/TPU availability, "💡 Tip" advertisements, "`Trainer.fit` stopped") are logged
# here; warnings from these modules that a user of Osteon cannot act on are silenced during training.
_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero")
_LIBRARY_MODULES = r"(lightning|lightning_fabric|pytorch_lightning|lightning_utilities|torch|torchmetrics)(\..*)?$"


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Hide Lightning's info messages and library deprecation warnings (ours and real problems still show).

    Silenced: the GPU/TPU availability lines, litlogger/litmodels tips and other ``rank_zero_info`` lines
    (logging level WARNING), ``DeprecationWarning``/``FutureWarning`` raised inside lightning/torch (e.g.
    torch's ``LeafSpec`` deprecation that Lightning triggers), and the advice to use more DataLoader workers
    (Osteon decodes every image once into memory, so ``num_workers=0`` is its deliberate default).
    """
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=_LIBRARY_MODULES)
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            # --resume writes into the run's own checkpoints/ again, which is the point
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class QuietTrainer(L.Trainer):
    """A Lightning ``Trainer`` whose ``fit`` runs under :func:`quiet_lightning`."""

    def fit(self, *args: Any, **kwargs: Any) -> None:
        with quiet_lightning():
            super().fit(*args, **kwargs)


class EpochProgressBar(RichProgressBar):
    """Rich progress bar that counts epochs from 1: "Epoch 1/2", "Epoch 2/2" (Lightning shows "0/1", "1/1")."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch + 1}"
        if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
            description += f"/{self.trainer.max_epochs}"
        return f"{description:{len(self.validation_description)}}"


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that keeps tracking the best epoch when a run directory was moved or copied.

    Lightning stores the absolute ``checkpoints/`` path and, when it differs on resume, forgets the best
    score, so that the next epoch would replace ``best.ckpt`` even when worse. The saved paths are mapped
    into this run's ``checkpoints/`` instead (their file names are fixed: ``best.ckpt``, ``last.ckpt``).
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and Path(old) != Path(self.dirpath):

            def moved(path: str) -> str:
                return str(Path(self.dirpath) / Path(path).name) if path else path  # type: ignore[arg-type]

            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                **{
                    key: moved(state_dict[key])
                    for key in ("best_model_path", "kth_best_model_path", "last_model_path")
                    if key in state_dict
                },
                "best_k_models": {moved(k): v for k, v in state_dict.get("best_k_models", {}).items()},
            }
        super().load_state_dict(state_dict)


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
    cfg: TrainConfig,
    run: RunDir,
    *,
    callbacks: Sequence[L.Callback] = (),
    progress: bool = True,
    monitor: str = "val/score",
    mode: str = "max",
) -> tuple[L.Trainer, ModelCheckpoint]:
    """The Trainer and its best-checkpoint callback (``best.ckpt`` on ``monitor``; ``last.ckpt`` every epoch).

    ``monitor``/``mode``: what ``best.ckpt`` follows (self-supervised pretraining has no validation score and
    passes ``train/loss``, ``min``). ``cfg`` is a :class:`TrainConfig` or a config with the same hardware and
    optimisation fields (:class:`osteon.engine.pretrain.PretrainConfig`).
    """
    best = RunCheckpoint(
        dirpath=run.checkpoints,
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        enable_version_counter=False,
    )
    # Its own callback: Lightning's save_last only writes when a new best was saved, which would
    # make --resume restart from the best epoch instead of the latest one.
    last = RunCheckpoint(
        dirpath=run.checkpoints, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
    )
    # RandomState first: it restores the saved random state before any other callback draws from it.
    all_callbacks: list[L.Callback] = [RandomState(), TrainingClock(), ResumeLogs(), best, last, *callbacks]
    if progress:  # on stderr, so that stdout stays machine-readable (run path, --json)
        all_callbacks.append(EpochProgressBar(console_kwargs={"stderr": True}))
    if cfg.early_stopping_patience:
        all_callbacks.append(EarlyStopping(monitor="val/score", mode="max", patience=cfg.early_stopping_patience))
    if getattr(cfg, "time_budget_min", None):
        all_callbacks.append(TimeBudget(cfg.time_budget_min * 60, first_plan=cfg.epochs))
    val_every, val_max_share = getattr(cfg, "val_every", 1), getattr(cfg, "val_max_share", None)
    if val_every > 1 or val_max_share:  # after TimeBudget: it needs the re-planned last epoch
        all_callbacks.append(ValidationSchedule(val_every, max_share=val_max_share))
    if getattr(cfg, "ema_decay", 0.0):  # validation, best.ckpt and model.pt then hold the averaged weights
        all_callbacks.append(EMAWeightAveraging(decay=cfg.ema_decay))
    if cfg.freeze_backbone_epochs:
        all_callbacks.append(BackboneFinetuning(unfreeze_backbone_at_epoch=cfg.freeze_backbone_epochs, verbose=False))
    loggers: list[Logger] = [ResumableCSVLogger(run.logs, name="", version="")]  # keeps metrics.csv on resume
    if importlib.util.find_spec("tensorboard") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run.logs, name="tensorboard", version=""))
    if importlib.util.find_spec("mlflow") is not None:
        from lightning.pytorch.loggers import MLFlowLogger

        loggers.append(
            MLFlowLogger(experiment_name="osteon", run_name=run.path.name, tracking_uri=f"file:{run.logs / 'mlruns'}")
        )
    with quiet_lightning():  # the GPU/TPU lines are logged while the Trainer is built
        trainer = QuietTrainer(
            # a time budget re-plans the epochs after each one (TimeBudget); --epochs is then only the first plan
            max_epochs=cfg.epochs if not getattr(cfg, "time_budget_min", None) else max(cfg.epochs, UNBOUNDED_EPOCHS),
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
            check_val_every_n_epoch=val_every,
        )
    return trainer, best
