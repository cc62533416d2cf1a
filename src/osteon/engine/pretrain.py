"""``pretrain``: self-supervised pretraining of a backbone on unlabelled images; writes ``RUN/backbone.pt``.

The same engine as :func:`osteon.engine.train`: the Trainer of :func:`~osteon.engine.trainer.build_trainer`
(``checkpoints/last.ckpt`` every epoch, the random state, the session clock and ``logs/metrics.csv`` kept across
``resume``), the progress display, seeds, and a run directory::

    RUN/
      config.yaml      the resolved PretrainConfig
      state.json       method, model, input channels, images, preprocessing (mean/std of the fine-tuned models)
      images.csv       every image found (absolute path) and whether it was used (unreadable ones with the error)
      excluded.csv     images left out and why (when any)
      checkpoints/     last.ckpt (resume), best.ckpt (lowest training loss)
      training.json    epochs run, sessions, wall time, hardware, method, final loss
      backbone.pt      the backbone of the last epoch + provenance (osteon.models.backbone_file)
      backbone_epochs<K>.pt  the previous backbone.pt, kept when a finished run of K epochs is extended
      logs/            metrics.csv (train/loss per epoch)

The method (SimCLR, BYOL, DINO, MAE) and its views are :mod:`osteon.models.ssl` and :mod:`osteon.data.ssl_views`.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch.utils.data import DataLoader

import osteon
from osteon.data.datasets import decode_images
from osteon.data.ssl_views import ViewsDataset, cache_size, collect_images
from osteon.data.transforms import Preprocessing
from osteon.engine.checkpoint import check_training_checkpoint
from osteon.engine.config import OptimizerName, PrecisionName, SchedulerName, is_ddp_child, one_of
from osteon.engine.module import TaskModule
from osteon.engine.rundir import RunDir
from osteon.engine.trainer import build_trainer
from osteon.errors import ConfigError, RunDirError
from osteon.models.backbone_file import save_backbone
from osteon.models.ssl import METHODS, SSLMethod, build_method, is_vit, require_lightly, vit_image_size

BACKBONE_FILE = "backbone.pt"
IMAGES_FILE = "images.csv"


class PretrainConfig(BaseModel):
    """Everything a pretraining run needs. Field names are the CLI flag names (``image_size`` → ``--image-size``).

    The hardware and optimisation fields have the names and meaning of :class:`~osteon.engine.config.TrainConfig`
    (the Trainer is built by the same function).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    data: list[str] = Field(min_length=1, description="Dataset folders/files or folders of images (labels ignored)")
    method: str = Field("simclr", description="simclr | byol | dino | mae (mae: timm:vit_* models)")
    model: str = Field("resnet18", description="Registered model name, or timm:<name>")
    out: str = Field("runs/pretrain", description="Run directory; never overwritten")
    epochs: int = Field(100, ge=1)
    image_size: int = Field(224, ge=32, le=2048, description="Square crop size in pixels")
    batch_size: int = Field(64, ge=2, description="Images per batch (≥ 2: the views of other images are negatives)")
    exclude_splits: list[str] = Field(
        default_factory=lambda: ["test"],
        description="Rows of these splits of a dataset are left out (a later test set stays unseen); [] keeps all",
    )
    channels: str = Field("grey", description="grey | rgb: input colour of the backbone")
    hflip: bool = Field(False, description="Horizontal flips in the views (only where laterality does not matter)")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: OptimizerName = Field("adamw", description="adamw | sgd")
    scheduler: SchedulerName = Field("cosine", description="cosine | none")
    accumulate_grad_batches: int = Field(1, ge=1)
    seed: int = 0
    deterministic: bool = False
    precision: PrecisionName = Field("auto", description="auto | 32 | bf16-mixed | 16-mixed")
    accelerator: str = "auto"
    devices: str = Field("auto", description="'auto', a count, or a comma list of device ids")
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="auto | ddp | ddp_spawn | fsdp ...")
    num_workers: int = Field(0, ge=0, description="DataLoader workers (images are decoded once and cached)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")
    # read by the shared Trainer builder; pretraining has no validation score to stop on
    early_stopping_patience: int = Field(0, ge=0, le=0)
    freeze_backbone_epochs: int = Field(0, ge=0, le=0)

    @field_validator("data", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return [str(value)]
        return [str(v) for v in value] if isinstance(value, list | tuple) else value

    @field_validator("exclude_splits", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip() and v.strip().lower() != "none"]
        return value

    @field_validator("method")
    @classmethod
    def _check_method(cls, value: str) -> str:
        return one_of("method", value, METHODS)

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: str) -> str:
        return one_of("channels", value, ("grey", "rgb"))

    @property
    def in_chans(self) -> int:
        return 3 if self.channels == "rgb" else 1

    @classmethod
    def from_values(cls, **values: Any) -> PretrainConfig:
        """The config from keyword values (``None`` means "not given"); errors name the flag and the fix."""
        given = {k: v for k, v in values.items() if v is not None}
        try:
            return cls(**given)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"]) or "config"
                flag = "--" + key.split(".")[0].replace("_", "-")
                if err["type"] == "missing":
                    problems.append(f"{flag} is required")
                elif err["type"] == "extra_forbidden":
                    problems.append(f"unknown option {key!r}")
                else:
                    problems.append(f"{flag}: {err['msg']} (got {err.get('input')!r})")
            raise ConfigError("Invalid pretraining config: " + "; ".join(problems) + ".") from None

    @classmethod
    def load(cls, path: str | Path) -> PretrainConfig:
        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict) or "method" not in values:
            raise RunDirError(f"{path}: not the config of a pretraining run. Fix: pass the --out of `osteon pretrain`.")
        return cls.from_values(**values)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))
        return path


class PretrainModule(L.LightningModule):
    """The Lightning module around a self-supervised method: logs ``train/loss``; optimiser and schedule as train."""

    def __init__(self, method: SSLMethod, cfg: PretrainConfig) -> None:
        super().__init__()
        self.method = method
        self.cfg = cfg
        self._total_steps = 1

    def on_train_start(self) -> None:
        self._total_steps = max(1, int(self.trainer.estimated_stepping_batches))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        progress = min(1.0, self.global_step / self._total_steps)  # the momentum schedules follow it
        loss = self.method.loss(list(batch), epoch=self.current_epoch, progress=progress)
        self.log(
            "train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(batch[0]), sync_dist=True
        )
        return loss

    def on_after_backward(self) -> None:
        self.method.after_backward(self.current_epoch)

    # the optimiser, the cosine schedule and its re-planning when a finished run is extended: as osteon train
    configure_optimizers = TaskModule.configure_optimizers
    on_load_checkpoint = TaskModule.on_load_checkpoint


def pretrain(
    cfg: PretrainConfig | None = None,
    *,
    resume: str | Path | None = None,
    callbacks: Sequence[L.Callback] = (),
    progress: bool = True,
    **overrides: Any,
) -> RunDir:
    """Pretrain a backbone without labels and return the run directory (``backbone.pt`` holds it).

    Args:
        cfg: The configuration (or pass its fields as keyword ``overrides``: ``data=[...]``, ``method="byol"`` ...).
        resume: A run directory whose ``checkpoints/last.ckpt`` to continue from (a crashed run, or a finished one
            with a larger ``epochs=``); its saved config and image list are used, ``overrides`` on top.
        callbacks: Extra Lightning callbacks.
        progress: Show progress bars.

    Raises:
        ConfigError: bad options, lightly missing, no images, a method the model cannot do (MAE needs a ViT).
        RunDirError: ``out`` already holds a run; ``resume`` is not a pretraining run or has nothing left to train.

    Example:
        >>> run = pretrain(data=["data/fracatlas"], method="simclr", model="resnet18", epochs=50, image_size=224,
        ...                out="runs/pre")  # doctest: +SKIP
    """
    require_lightly()
    if resume is not None:
        return _resume(Path(resume), overrides, callbacks=callbacks, progress=progress)
    if cfg is None:
        cfg = PretrainConfig.from_values(**overrides)
    elif overrides:
        cfg = PretrainConfig.from_values(**{**cfg.model_dump(), **overrides})
    if is_ddp_child():  # rank > 0 of a DDP run: attach to the run rank 0 made
        run = RunDir(Path(cfg.out))
        last = run.last_checkpoint if run.last_checkpoint.is_file() else None
        return _fit(run, cfg, _used_images(run), ckpt_path=last, callbacks=callbacks, progress=progress)
    out = Path(cfg.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunDirError(
            f"{out} already holds a run. Fix: continue it with `osteon pretrain --resume {out}`, "
            "or choose another --out."
        )
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    _build(cfg)  # refuses a model the method cannot train before anything is decoded or written
    collected = collect_images(cfg.data, exclude_splits=cfg.exclude_splits)
    paths = collected.paths
    stack, errors = _decode(paths, cfg, progress=progress)
    run = RunDir.create(out)
    cfg.save(run.config)
    images = pd.DataFrame({"image": [str(p.resolve()) for p in paths], "used": True, "error": ""})
    for i, message in errors.items():
        images.loc[i, ["used", "error"]] = [False, message]
    images.to_csv(run.path / IMAGES_FILE, index=False)
    if errors:
        images.loc[~images["used"], ["image", "error"]].rename(columns={"error": "reason"}).to_csv(
            run.excluded, index=False
        )
    run.write_json(
        run.state,
        {
            "pretrain": {
                "method": cfg.method,
                "model": cfg.model,
                "in_chans": cfg.in_chans,
                "data": list(cfg.data),
                "sources": collected.sources,
                "exclude_splits": list(cfg.exclude_splits),
                "n_images": int(images["used"].sum()),
                "n_unreadable": len(errors),
                "image_size": cfg.image_size,
                "cache_size": cache_size(cfg.image_size),
                "hflip": cfg.hflip,
            },
            "preprocessing": Preprocessing(image_size=cfg.image_size, channels=cfg.in_chans).to_dict(),
        },
    )
    return _fit(run, cfg, stack, ckpt_path=None, callbacks=callbacks, progress=progress)


def _resume(path: Path, overrides: dict[str, Any], *, callbacks: Sequence[L.Callback], progress: bool) -> RunDir:
    run = RunDir(path)
    if not run.config.is_file():
        raise RunDirError(f"{path} is not a run directory (no config.yaml). Fix: pass the --out of `osteon pretrain`.")
    cfg = PretrainConfig.load(run.config)
    if not run.last_checkpoint.is_file():
        raise RunDirError(f"{path}: no checkpoints/last.ckpt to resume from; the run never finished an epoch.")
    check_training_checkpoint(run.last_checkpoint)
    cfg = PretrainConfig.from_values(
        **{**cfg.model_dump(), **{k: v for k, v in overrides.items() if k not in ("data", "exclude_splits")}}
    )
    done = int(run.read_json(run.training).get("epochs_run", 0))
    if (run.path / BACKBONE_FILE).is_file() and done and cfg.epochs <= done:
        raise RunDirError(
            f"{path} already pretrained {done} epochs (backbone.pt is written). Fix: pass a larger --epochs "
            f"(e.g. `osteon pretrain --resume {path} --epochs {done + max(1, done // 2)}`)."
        )
    if (run.path / BACKBONE_FILE).is_file() and done:  # runs fine-tuned from it keep finding those weights
        shutil.copy2(run.path / BACKBONE_FILE, run.path / f"backbone_epochs{done}.pt")
    cfg.save(run.config)
    return _fit(run, cfg, _used_images(run, progress=progress, cfg=cfg), ckpt_path=run.last_checkpoint,
                callbacks=callbacks, progress=progress)  # fmt: skip


def _used_images(run: RunDir, *, progress: bool = False, cfg: PretrainConfig | None = None) -> np.ndarray:
    """The cached images of a run's ``images.csv`` (those used when it started), decoded again."""
    cfg = cfg or PretrainConfig.load(run.config)
    table = pd.read_csv(run.path / IMAGES_FILE, keep_default_na=False)
    paths = [Path(p) for p, used in zip(table["image"], table["used"], strict=True) if str(used) == "True"]
    stack, _ = _decode(paths, cfg, progress=progress)
    return stack


def _decode(paths: list[Path], cfg: PretrainConfig, *, progress: bool) -> tuple[np.ndarray, dict[int, str]]:
    """Images decoded once at :func:`cache_size`; unreadable ones are left out with one warning naming the first."""
    prep = Preprocessing(image_size=cache_size(cfg.image_size), channels=cfg.in_chans)
    decoded = decode_images(paths, prep, workers=max(2, cfg.num_workers), progress=progress, description="decode")
    errors = decoded.errors
    if errors:
        first = "; ".join(errors[i] for i in sorted(errors)[:3])
        warnings.warn(
            f"{len(errors)} of {len(paths)} images could not be read and are left out of pretraining (first: {first}).",
            stacklevel=3,
        )
    keep = decoded.readable()
    if len(keep) < 2:
        raise ConfigError(
            f"{len(keep)} readable image(s) among {len(paths)}; pretraining needs at least 2 (a batch compares "
            "images with each other). Fix: pass folders with more readable images."
        )
    return decoded.stack[keep], errors


def _build(cfg: PretrainConfig) -> SSLMethod:
    """The backbone (random weights, as ``create_backbone`` builds it) inside the method."""
    from osteon.models import get_model_entry
    from osteon.models.network import create_backbone

    backbone = create_backbone(get_model_entry(cfg.model), in_chans=cfg.in_chans, pretrained=None)
    with warnings.catch_warnings():  # lightly's DINO head uses torch's weight_norm, which torch marks deprecated
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*weight_norm.*")
        method = build_method(cfg.method, backbone, model_name=cfg.model)
    native = vit_image_size(backbone)
    if native is not None and native != cfg.image_size:
        raise ConfigError(
            f"{cfg.model} takes {native} px images (its position embedding has that size); got --image-size "
            f"{cfg.image_size}. Fix: pass --image-size {native}."
        )
    return method


def _fit(
    run: RunDir,
    cfg: PretrainConfig,
    stack: np.ndarray,
    *,
    ckpt_path: Path | None,
    callbacks: Sequence[L.Callback],
    progress: bool,
) -> RunDir:
    from osteon.engine.fit import _record_training

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    method = _build(cfg)
    dataset = ViewsDataset(
        stack,
        Preprocessing(image_size=cfg.image_size, channels=cfg.in_chans),
        image_size=cfg.image_size,
        global_views=method.global_views,
        local_views=method.local_views,
        local_size=cfg.image_size if is_vit(method.backbone) else max(16, cfg.image_size // 2),
        hflip=cfg.hflip,
    )
    loader = DataLoader(
        dataset,
        batch_size=min(cfg.batch_size, len(dataset)),
        shuffle=True,
        drop_last=True,  # a batch of one image has nothing to compare with (and breaks batch norm)
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
    )
    module = PretrainModule(method, cfg)
    trainer, _ = build_trainer(
        cfg,  # type: ignore[arg-type]  # the same hardware/optimisation fields as TrainConfig
        run,
        callbacks=callbacks,
        progress=progress,
        monitor="train/loss",
        mode="min",
    )
    started = time.perf_counter()
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    duration = time.perf_counter() - started
    if not trainer.is_global_zero:
        return run
    _record_training(run, cfg, trainer, duration, resumed=ckpt_path is not None)  # type: ignore[arg-type]
    final_loss = float(trainer.callback_metrics.get("train/loss", float("nan")))
    epochs = int(trainer.current_epoch)
    record = run.read_json(run.training)
    record.update({"method": cfg.method, "model": cfg.model, "final_loss": final_loss, "epochs_run": epochs})
    run.write_json(run.training, record)
    state = run.read_json(run.state).get("pretrain", {})
    save_backbone(
        run.path / BACKBONE_FILE,
        cfg.model,
        cfg.in_chans,
        method.backbone.state_dict(),
        {
            "method": cfg.method,
            "epochs": epochs,
            "data": list(cfg.data),
            "n_images": int(state.get("n_images", len(stack))),
            "image_size": cfg.image_size,
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "osteon_version": osteon.__version__,
            "run": run.path.name,
            "final_loss": final_loss,
        },
    )
    return run
