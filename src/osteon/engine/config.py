"""The typed training configuration: loaded from YAML, overridden by CLI flags of the same names.

Precedence: defaults < YAML file < CLI flags. The resolved config is saved in the run directory
(``config.yaml``) and read back with :meth:`TrainConfig.load`; nothing in it is ever evaluated.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from osteon.data.adapters._base import DATASET_OPTIONS
from osteon.errors import ConfigError


def _choice(name: str, *allowed: str) -> AfterValidator:
    return AfterValidator(lambda value: one_of(name, str(value), allowed))


#: Options shared by ``TrainConfig`` and ``PretrainConfig``, checked with an error that names them.
OptimizerName = Annotated[str, _choice("optimizer", "adamw", "sgd")]
SchedulerName = Annotated[str, _choice("scheduler", "cosine", "none")]
SelectEpoch = Annotated[str, _choice("select_epoch", "best", "last")]
PrecisionName = Annotated[str, _choice("precision", "auto", "32", "bf16-mixed", "16-mixed")]


class TaskName(StrEnum):
    CLASSIFY = "classify"
    GRADE = "grade"
    REGRESS = "regress"
    DETECT = "detect"
    SEGMENT = "segment"
    MULTIVIEW = "multiview"
    BILATERAL = "bilateral"
    MULTITASK = "multitask"
    KEYPOINTS = "keypoints"
    SEGMENT3D = "segment3d"
    SLICES = "slices"
    TILED = "tiled"


class TrainConfig(BaseModel):
    """Everything a training run needs. Field names are the CLI flag names (``image_size`` → ``--image-size``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=True)

    # what to learn
    task: TaskName = Field(
        description="classify | grade | regress | detect | segment | keypoints | segment3d | slices | tiled"
    )
    data: str = Field(description="Dataset folder, annotation file or Manifest CSV")
    format: str | None = Field(None, description="Dataset format; detected when not given")
    # dataset adapter options (osteon.data.adapters.DATASET_OPTIONS; also flags of `osteon data ...`)
    image_column: str | None = Field(None, description=DATASET_OPTIONS["image_column"])
    image_template: str | None = Field(None, description=DATASET_OPTIONS["image_template"])
    images_root: str | None = Field(None, description=DATASET_OPTIONS["images_root"])
    label_column: str | None = Field(None, description=DATASET_OPTIONS["label_column"])
    patient_column: str | None = Field(None, description=DATASET_OPTIONS["patient_column"])
    target_column: str | None = Field(None, description=DATASET_OPTIONS["target_column"])
    split_column: str | None = Field(None, description=DATASET_OPTIONS["split_column"])
    patient_pattern: str | None = Field(None, description=DATASET_OPTIONS["patient_pattern"])
    target: str | None = Field(None, description="Manifest column to learn (default: label, or target for regress)")
    positive_class: str | None = Field(None, description="Positive class of a binary task (default: '1' or the last)")
    covariates: list[str] = Field(default_factory=list, description="Manifest columns fed beside the image")
    out: str = Field("runs/run", description="Run directory; never overwritten")

    # model
    model: str = Field("resnet18", description="Registered model name, or timm:<name>")
    encoder: str | None = Field(None, description="segment/detect: backbone of the model (e.g. resnet18)")
    pretrained: str | None = Field(
        None, description="Run of `osteon pretrain` (or its backbone.pt), a local weights file, or 'hub' (internet)"
    )
    image_size: int = Field(
        224, ge=16, le=4096, description="Square input size in pixels (the default detector's recipe: 512)"
    )
    channels: str = Field("auto", description="auto | grey | rgb: input colour (auto: rgb when train images are)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    loss: str | None = Field(None, description="classify: ce|bce; grade: corn|ce; regress: l1|mse|huber")
    class_weighting: str = Field("none", description="none | loss | sampler (class imbalance)")
    freeze_backbone_epochs: int = Field(0, ge=0, description="Train only the head for this many epochs")
    fusion: str = Field("mean", description="multiview: late fusion of the views: mean | max | concat")
    shared_backbone: bool = Field(True, description="multiview: one backbone for every view (else one per view)")
    slice_pooling: str = Field(
        "attention", description="slices: pooling of the slice features: attention | max | mean (MRNet: max)"
    )
    # tiled: full-resolution classification from a bag of tiles (osteon.tasks.tiled)
    tile_size: int = Field(256, ge=16, le=2048, description="tiled: tile side in pixels, at the tile scale")
    tile_scale: float = Field(1.0, gt=0, le=1, description="tiled: tile resolution as a fraction of the native one")
    tile_max_side: int | None = Field(
        None, ge=16, description="tiled: longest side of an image at the tile scale (larger ones are downsized)"
    )
    max_tiles: int = Field(16, ge=1, le=4096, description="tiled: most tiles per image and step (most foreground)")
    tile_pooling: str = Field("attention", description="tiled: pooling of the tile features: attention | max | mean")
    tile_context: bool = Field(False, description="tiled: add the whole image, at tile size, as one more instance")

    # segmentation / detection
    patch_size: int | None = Field(
        None, ge=16, description="segment, detect (centernet): train on random crops of this size"
    )
    window_overlap: float = Field(0.25, ge=0, lt=1, description="segment: sliding-window overlap at inference")
    score_threshold: float = Field(0.05, ge=0, le=1, description="detect: lowest box score kept in predictions")
    box_scale: float | None = Field(
        None,
        gt=0,
        description="detect: scale predicted boxes about their centres by this factor (default: chosen on "
        "validation, the inverse of the boxes' median size ratio to the true ones, 0.7-1.3; 1: the network's own)",
    )
    backend: str = Field("torchvision", description="detect: torchvision | yolo (extra 'yolo')")
    flip_test: bool = Field(
        True,
        description="detect (centernet): predict on the image and its mirror image and average (twice the "
        "inference cost); --no-flip-test predicts in one pass",
    )

    # optimisation
    epochs: int = Field(10, ge=1)
    time_budget_min: float | None = Field(
        None, gt=0, description="Train for this many wall-clock minutes instead of --epochs (re-planned each epoch)"
    )
    batch_size: int = Field(
        32, ge=1, description="Images per optimiser step (the recipes of segment and the default detector: 8)"
    )
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: OptimizerName = Field("adamw", description="adamw | sgd")
    scheduler: SchedulerName = Field("cosine", description="cosine | none")
    accumulate_grad_batches: int = Field(1, ge=1)
    ema_decay: float = Field(
        0.0, ge=0, lt=1, description="Exponential moving average of the weights per step (e.g. 0.99; 0: off)"
    )
    early_stopping_patience: int = Field(0, ge=0, description="Epochs without validation gain before stopping (0: off)")
    val_every: int = Field(
        1,
        ge=1,
        description="Validate every N epochs (and always the last): validation on whole images can cost as much "
        "as an epoch of training on crops",
    )
    val_max_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Skip a scheduled validation while validating would take more than this share of the training "
        "time so far (the first and the last validation always run; e.g. 0.05; none: no cap). Early-stopping "
        "patience then counts the validations that ran",
    )
    select_epoch: SelectEpoch = Field(
        "best",
        description="The epoch model.pt keeps: best (validation score) or last (the end of the schedule; steadier "
        "than a best epoch picked on a small validation split)",
    )

    # augmentation (radiograph-safe: no colour jitter)
    augment: bool = True
    hflip: bool = Field(False, description="Horizontal flips (only where the anatomy allows, e.g. knee L/R)")
    rotate_degrees: float = Field(10.0, ge=0, le=180)
    scale_range: float = Field(0.1, ge=0, lt=1)
    brightness: float = Field(0.1, ge=0, lt=1)
    contrast: float = Field(0.1, ge=0, lt=1)
    gamma: float = Field(0.1, ge=0, lt=1)

    # splits
    split_file: str | None = Field(None, description="CSV with image,split columns to use instead of the data's split")
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)
    allow_patient_overlap: bool = Field(
        False, description="Train although a patient has images in two splits (leaks; recorded in the run)"
    )

    # hardware and reproducibility
    seed: int = 0
    deterministic: bool = False
    precision: PrecisionName = Field("auto", description="auto | 32 | bf16-mixed | 16-mixed")
    channels_last: bool = False
    accelerator: str = "auto"
    devices: str = Field("auto", description="'auto', a count, or a comma list of device ids")
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="auto | ddp | ddp_spawn | fsdp ...")
    num_workers: int = Field(0, ge=0, description="DataLoader workers (images are decoded once and cached)")
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads (default: torch's choice; 1 is faster on a busy shared machine)"
    )

    @field_validator("covariates", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [v.strip() for item in value for v in str(item).split(",") if v.strip()]
        return value

    @field_validator("class_weighting")
    @classmethod
    def _check_weighting(cls, value: str) -> str:
        return one_of("class_weighting", value, ("none", "loss", "sampler"))

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: str) -> str:
        return one_of("channels", value, ("auto", "grey", "rgb"))

    def dataset_options(self) -> dict[str, str]:
        """The adapter options that are set (``image_column`` ...), for ``load_dataset(cfg.data, **options)``."""
        return {name: value for name in DATASET_OPTIONS if (value := getattr(self, name)) is not None}

    # -- persistence ----------------------------------------------------------------------------
    @classmethod
    def from_sources(cls, yaml_path: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """Defaults < YAML file < overrides (``None`` overrides mean "not given")."""
        values: dict[str, Any] = {}
        if yaml_path is not None:
            values.update(_read_yaml(Path(yaml_path)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, yaml_path)) from None

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_sources(path)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))
        return path


def one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; else a ValueError naming the option (pydantic reports it)."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, got {type(values).__name__}.")
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def _explain(exc: ValidationError, source: str | Path | None) -> str:
    where = f" in {source}" if source else ""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            from difflib import get_close_matches

            close = get_close_matches(key, list(TrainConfig.model_fields), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            lines.append(f"unknown option {key!r}{hint}")
        elif err["type"] == "missing":
            lines.append(f"{key!r} is required (--{key.replace('_', '-')})")
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return f"Invalid training config{where}: " + "; ".join(lines) + "."


def is_ddp_child() -> bool:
    """True in a process that Lightning's DDP launcher started for rank > 0 of a node (or a node > 0).

    Those processes re-run the same command; they must attach to the run that rank 0 created
    instead of creating one.
    """
    import os

    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
