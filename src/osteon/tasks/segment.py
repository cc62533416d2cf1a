"""``segment``: masks per pixel (U-Net family), evaluated with Dice, IoU, HD95 and ASD with CIs by patient.

Targets come from the Manifest's ``mask`` column (label-map files; NA = all background) or its ``polygons``
column (JSON; ``"[]"`` = all background, NA = not annotated), see :mod:`osteon.tasks._segment_data`.

Outputs: binary tasks (one foreground class) and multi-label tasks (overlapping polygon classes) have one
sigmoid channel per foreground class; multi-class tasks have a softmax over ``class_names`` (background = 0).

Resolution: the engine decodes every image once, letterboxed to ``image_size``. Without ``patch_size`` the
model trains on those whole images; with it, on random ``patch_size`` crops of them (so ``image_size`` sets the
training scale and ``patch_size`` the field of view). Validation and prediction slide a ``patch_size`` window
(MONAI, Gaussian blending, ``window_overlap``) over the whole letterboxed image, then map the probabilities back
to the ORIGINAL pixel grid by inverting the letterbox, so masks, areas and distances are in original pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from osteon.data.datasets import DecodedImages
from osteon.data.manifest import Manifest
from osteon.data.transforms import Letterbox, Preprocessing, load_unit_image, normalize, with_channels
from osteon.errors import ConfigError
from osteon.tasks import _segment_infer as infer
from osteon.tasks._segment_data import (
    BACKGROUND,
    MASK,
    SegmentationDataset,
    TargetSpec,
    detect_source,
    input_target,
    is_missing,
    label_map_values,
    original_target,
    polygon_classes,
)
from osteon.tasks._targets import patient_groups
from osteon.tasks.base import TASKS, Monitor, OutputWriter, TaskBase, TaskState, input_channels, native_bf16_cpu
from osteon.tasks.predictions import MaskPrediction

LOSSES = ("dice_ce", "dice", "focal", "dice_focal")
#: The default recipe when the config leaves these unset (``osteon train --task segment`` with no flags; applied by
#: the engine through :meth:`SegmentationTask.recipe_defaults`): a U-Net (with smp's default ResNet-18 encoder),
#: trained 8 images per step, in bf16 autocast on CPUs with native bf16 (:func:`default_precision`). See
#: docs/decisions.md: at a fixed CPU budget, 8 images per step give 4x the optimiser updates of the engine-wide 32,
#: and bf16 about 2x the steps per second.
DEFAULT_ARCHITECTURE = "unet"
DEFAULT_BATCH_SIZE = 8


def default_precision() -> str:
    """The segment default when ``--precision`` is not given: bf16 autocast on CPUs with native bf16 (about 2x the
    training steps per CPU second, weights kept in fp32), else ``auto`` (fp32 on CPUs, bf16/fp16 on GPUs)."""
    return "bf16-mixed" if native_bf16_cpu() else "auto"


ID_COLUMNS = ("image", "patient_id", "study_id", "split")


@TASKS.register("segment")
class SegmentationTask(TaskBase):
    """The segment task's engine hooks (see :class:`osteon.tasks.base.Task`)."""

    name: ClassVar[str] = "segment"
    colour_input: ClassVar[bool] = True
    prediction_type: ClassVar[type | None] = MaskPrediction
    monitor: ClassVar[Monitor] = Monitor("Dice", "max")

    def __init__(self, state: TaskState) -> None:
        self.state = state
        extra = state.extra
        self.spec = TargetSpec(
            column=state.target,
            source=extra.get("source", MASK),
            class_names=tuple(state.class_names),
            multilabel=state.multilabel,
            mask_values=tuple(extra["mask_values"]) if extra.get("mask_values") else None,
        )
        self._loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    # -- set-up ---------------------------------------------------------------------------------
    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        """Find the mask column and the classes (polygon labels, or the values found in the label maps)."""
        if positive_class is not None:
            raise ConfigError("positive_class does not apply to segment (every foreground class is scored).")
        column, source = detect_source(manifest, target)
        multilabel = False
        extra: dict[str, Any] = {"source": source}
        if source == MASK:
            values = label_map_values(manifest, column)
            names = [str(v) for v in values[1:]]
            extra["mask_values"] = values
        else:
            names, multilabel = polygon_classes(manifest, column)
        if not names:
            raise ConfigError(
                f"{manifest.name}: column {column!r} holds no foreground (every mask is empty). "
                "Fix: check the masks, or the --target column."
            )
        if BACKGROUND in names:
            raise ConfigError(f"{manifest.name}: {BACKGROUND!r} is reserved for class 0; rename that label.")
        loss = loss or "dice_ce"
        if loss not in LOSSES:
            raise ConfigError(f"loss={loss!r} is not available for segment; use one of {', '.join(LOSSES)}.")
        return TaskState("segment", column, [BACKGROUND, *names], None, multilabel, loss, extra)

    @classmethod
    def recipe_defaults(cls, cfg: Any) -> dict[str, Any]:
        """U-Net, batch 8 and bf16 on CPUs with native bf16, for the fields the user did not set."""
        return {"model": DEFAULT_ARCHITECTURE, "batch_size": DEFAULT_BATCH_SIZE, "precision": default_precision()}

    @classmethod
    def configure(cls, state: TaskState, cfg: Any) -> TaskState:
        """Record the config options inference needs (encoder, patch size, overlap) and check them early."""
        if cfg.covariates:
            raise ConfigError(f"segment does not use covariates (got {cfg.covariates}). Fix: drop --covariates.")
        if cfg.patch_size is not None and cfg.patch_size > cfg.image_size:
            raise ConfigError(
                f"patch_size={cfg.patch_size} is larger than image_size={cfg.image_size}; patches are cut from the "
                "image at image_size. Fix: raise --image-size or lower --patch-size."
            )
        extra = {
            **state.extra,
            "encoder": cfg.encoder,
            "patch_size": cfg.patch_size,
            "window_overlap": cfg.window_overlap,
            "image_size": cfg.image_size,
        }
        configured = TaskState(**{**state.__dict__, "extra": extra})
        cls(configured).build_model(model=cfg.model, pretrained=None, covariate_dim=0, dropout=0.0)  # fail early
        return configured

    @property
    def class_names(self) -> list[str]:
        return list(self.state.class_names)

    @property
    def sigmoid(self) -> bool:
        """One sigmoid channel per foreground class (binary, multi-label) instead of a softmax."""
        return self.state.multilabel or len(self.class_names) == 2

    @property
    def num_outputs(self) -> int:
        return len(self.class_names) - 1 if self.sigmoid else len(self.class_names)

    @property
    def roi(self) -> int:
        """Side of the sliding window: the training patch, else the whole input."""
        return int(self.state.extra.get("patch_size") or self.state.extra.get("image_size") or 0)

    # -- engine hooks: training -----------------------------------------------------------------
    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        from osteon.models.segmentation import create_segmentation_model

        if covariate_dim:
            raise ConfigError("segment does not use covariates. Fix: drop --covariates.")
        net = create_segmentation_model(
            model,
            self.num_outputs,
            encoder=self.state.extra.get("encoder"),
            pretrained=pretrained,
            dropout=dropout,
            in_chans=input_channels(self.state),
        )
        if self.roi and self.roi % net.divisor:
            size = "patch_size" if self.state.extra.get("patch_size") else "image_size"
            fixed = max(net.divisor, round(self.roi / net.divisor) * net.divisor)
            raise ConfigError(
                f"{model} needs inputs whose sides are multiples of {net.divisor}; {size}={self.roi} is not. "
                f"Fix: --{size.replace('_', '-')} {fixed}."
            )
        return net

    def missing_targets(self, manifest: Manifest) -> np.ndarray:
        return is_missing(manifest, self.spec)

    def make_dataset(
        self,
        manifest: Manifest,
        rows: np.ndarray,
        decoded: DecodedImages,
        *,
        covariates: np.ndarray | None,
        augment: Callable[..., Any] | None,
        prep: Preprocessing,
    ) -> Dataset:
        size = prep.image_size
        multilabel = self.state.multilabel
        k = len(self.class_names) - 1
        shape = (len(rows), k, size, size) if multilabel else (len(rows), size, size)
        targets = np.zeros(shape, dtype=bool if multilabel else np.uint8)
        has = np.zeros(len(rows), dtype=bool)

        def work(i: int) -> None:
            geometry = decoded.geometry[i]
            if geometry is None:
                return
            target = input_target(manifest, int(rows[i]), self.spec, geometry, size)
            if target is not None:
                targets[i], has[i] = target, True

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(work, range(len(rows))))
        split = manifest.frame["split"].iloc[rows] if "split" in manifest.frame else pd.Series([], dtype="string")
        training = len(rows) > 0 and bool((split == "train").all())
        return SegmentationDataset(
            decoded.stack,
            [g for g in decoded.geometry],  # type: ignore[misc]
            targets,
            has,
            rows,
            prep,
            augment=augment if training else None,
            patch_size=self.state.extra.get("patch_size"),
            training=training,
        )

    def class_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        return None

    def _loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if self._loss_fn is None:
            self._loss_fn = build_loss(self.state.loss, sigmoid=self.sigmoid)
        return self._loss_fn

    def _loss_target(self, mask: torch.Tensor) -> torch.Tensor:
        if self.state.multilabel:
            return mask.float()
        if self.sigmoid:  # binary: the foreground channel
            return (mask == 1).float()
        return mask.long()

    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        logits = model(batch["image"])
        return self._loss()(logits, self._loss_target(batch["mask"]))

    def _input_logits(self, model: nn.Module, images: torch.Tensor, prep: Preprocessing | None = None) -> torch.Tensor:
        overlap = float(self.state.extra.get("window_overlap", 0.25))
        pad = infer.pad_value(prep) if prep is not None else -2.0
        return infer.window_logits(
            model, images, roi=self.roi or images.shape[-1], overlap=overlap, batch_size=4, pad_value=pad
        )

    @torch.no_grad()
    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        """Per-image mean foreground Dice (MONAI) in the input space; empty truth and prediction count as 1."""
        from monai.metrics import compute_dice

        probs = infer.activate(self._input_logits(model, batch["image"]), sigmoid=self.sigmoid)
        keep = batch["has_mask"].bool().cpu()
        if not keep.any():
            return []
        pred = torch.stack([torch.from_numpy(self._channels(self._decide(p))) for p in probs[keep]])
        truth = torch.stack([torch.from_numpy(self._channels(m.cpu().numpy())) for m in batch["mask"][keep]])
        dice = compute_dice(pred.float(), truth.float(), include_background=True, ignore_empty=False)
        return dice.mean(dim=1).tolist()

    def ensemble_outputs(self, outputs: list[torch.Tensor], members: list[TaskState] | None = None) -> torch.Tensor:
        """Per-pixel logits whose sigmoid/softmax is the members' mean probability."""
        from osteon.tasks._ensemble import mean_sigmoid, mean_softmax

        return mean_sigmoid(outputs) if self.sigmoid else mean_softmax(outputs)

    def _decide(self, probabilities: torch.Tensor) -> np.ndarray:
        return infer.decide(probabilities, sigmoid=self.sigmoid, multilabel=self.state.multilabel)

    def _channels(self, mask: np.ndarray) -> np.ndarray:
        """``(K, H, W)`` bool from a class map ``(H, W)``/``(1, H, W)`` or multi-label channels."""
        if self.state.multilabel:
            return mask.astype(bool)
        labels = mask[0] if mask.ndim == 3 else mask
        return np.stack([labels == k for k in range(1, len(self.class_names))])

    def monitor_records(self, records: list[Any]) -> float:
        """Validation mean Dice (higher is better)."""
        return float(np.mean(records)) if records else float("nan")

    # -- engine hooks: results ------------------------------------------------------------------
    @torch.inference_mode()
    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 32,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """One row per image: ids, ``truth``/``prediction`` (classes present), measurements, per-image metrics.

        With ``outputs``, predicted masks are handed to it as ``"masks"`` (class maps; multi-label: channel stacks)
        and, where the truth is known, true masks as ``"truth"``; the paths it returns are in ``mask_file`` /
        ``truth_file``. Columns per foreground class ``c``: ``area_px_c``, ``area_mm2_c``, ``components_c``,
        ``bbox_c``; with truth also ``truth_area_px_c``, ``dice_c``, ``iou_c``, ``hd95_c``/``asd_c`` (pixels) and
        ``hd95_mm_c``/``asd_mm_c`` (mm, when the spacing is known).
        """
        from osteon.metrics.segmentation import mask_metrics

        ds: SegmentationDataset = dataset  # type: ignore[assignment]
        prep = ds.prep
        was_training = model.training
        model.eval()
        names = self.class_names[1:]
        used: set[str] = set()
        records: list[dict[str, Any]] = []
        for start in range(0, len(ds), max(1, batch_size)):
            stop = min(len(ds), start + max(1, batch_size))
            chunk = ds.images[start:stop].float()
            images = normalize(chunk[:, None] if chunk.ndim == 3 else chunk, prep)  # grey gets a channel axis
            probs = infer.activate(self._input_logits(model, images, prep), sigmoid=self.sigmoid)
            for b, i in enumerate(range(start, stop)):
                row = int(ds.indices[i])
                geometry = ds.geometry[i]
                mask, _ = infer.to_original(probs[b], geometry, sigmoid=self.sigmoid, multilabel=self.state.multilabel)
                path = manifest.resolve(str(manifest.frame["image"].iat[row]))
                spacing = infer.pixel_spacing(manifest.frame, row, path)
                channels = self._channels(mask)
                record: dict[str, Any] = {
                    "prediction": _present(channels, names),
                    "height": geometry.original_hw[0],
                    "width": geometry.original_hw[1],
                    "spacing_row": spacing[0] if spacing else np.nan,
                    "spacing_col": spacing[1] if spacing else np.nan,
                }
                stem = _unique_stem(path, row, used)
                if outputs is not None:
                    record["mask_file"] = outputs.save_mask("masks", stem, mask)
                record.update(infer.measurement_columns(infer.measure(channels, names, spacing)))
                truth = original_target(manifest, row, self.spec, geometry.original_hw) if ds.has_target[i] else None
                record["truth"] = _present(truth, names) if truth is not None else pd.NA
                if truth is not None:
                    record.update(_metric_columns(mask_metrics, truth, channels, names, spacing))
                    # the same masks on the letterboxed input grid the model saw (no resampling back)
                    grid = mask_metrics(
                        self._channels(ds.targets[i].numpy()), self._channels(self._decide(probs[b])), distances=False
                    )
                    record.update(_grid_columns(grid, names))
                    if outputs is not None:
                        saved = truth if self.state.multilabel else _labels(truth)
                        record["truth_file"] = outputs.save_mask("truth", stem, saved)
                records.append(record)
        model.train(was_training)
        source = manifest.frame.iloc[ds.indices]
        ids = pd.DataFrame({c: source[c].to_numpy() for c in ID_COLUMNS if c in source})
        table = pd.DataFrame(records)
        if "truth" in table:
            table["truth"] = table["truth"].astype("string")
        front = [c for c in ("truth", "prediction") if c in table]
        table = table[front + [c for c in table.columns if c not in front]]
        return pd.concat([ids.reset_index(drop=True), table.reset_index(drop=True)], axis=1)

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        """Dice, IoU, HD95, ASD and image-level rates with bootstrap CIs (by patient when every row has an id)."""
        from osteon.metrics.segmentation import segmentation_report

        names = self.class_names[1:]
        keys = [infer.column_key(n) for n in names]
        if not all(f"dice_{k}" in frame for k in keys):
            raise ConfigError("The predictions have no per-image metrics (no ground truth masks); nothing to evaluate.")
        groups = patient_groups(frame)
        in_mm = all(f"hd95_mm_{k}" in frame for k in keys) and bool(
            frame[["spacing_row", "spacing_col"]].notna().all(axis=None)
        )
        suffix = "_mm" if in_mm else ""

        def stack(prefix: str) -> np.ndarray:
            return _stack(frame, keys, prefix)

        per_image = {
            "dice": stack("dice"),
            "iou": stack("iou"),
            "hd95": stack(f"hd95{suffix}"),
            "asd": stack(f"asd{suffix}"),
            "truth_pixels": stack("truth_area_px"),
            "pred_pixels": stack("area_px"),
            "overlap_pixels": stack("overlap_px"),
        }
        result = segmentation_report(
            per_image,
            class_names=names,
            groups=groups,
            distance_unit="mm" if in_mm else "px",
            n_resamples=n_resamples,
            seed=seed,
        )
        result["resolution"] = "original image pixels (predictions mapped back from the letterboxed input)"
        if all(f"dice_grid_{k}" in frame for k in keys):
            result.update(_input_grid_report(frame, keys, names, groups, n_resamples, seed))
        result["inference"] = {
            "image_size": self.state.extra.get("image_size"),
            "patch_size": self.state.extra.get("patch_size"),
            "window": self.roi,
            "window_overlap": self.state.extra.get("window_overlap"),
            "threshold": "p > 0.5" if self.sigmoid else "argmax",
        }
        return result

    # -- single images ----------------------------------------------------------------------------
    # Masks use p > 0.5 (sigmoid) or the argmax class (softmax): nothing is tuned on validation, so the
    # default choose_operating_point (None) applies.
    def predict(
        self,
        outputs: torch.Tensor,
        *,
        geometry: list[Letterbox] | None = None,
        spacing: list[tuple[float, float] | None] | None = None,
        **kwargs: Any,
    ) -> list[MaskPrediction]:
        """Typed masks from ``(B, C, S, S)`` logits: in original pixels when the letterbox ``geometry`` of each input
        is given, else in input pixels."""
        probs = infer.activate(outputs, sigmoid=self.sigmoid)
        names = self.class_names[1:]
        out = []
        for k in range(len(probs)):
            if geometry is not None:
                mask, original = infer.to_original(
                    probs[k], geometry[k], sigmoid=self.sigmoid, multilabel=self.state.multilabel
                )
            else:
                mask, original = self._decide(probs[k]), probs[k].float().cpu().numpy()
            mm = spacing[k] if spacing else None
            out.append(
                MaskPrediction(
                    mask, original, tuple(self.class_names), mm, infer.measure(self._channels(mask), names, mm)
                )
            )
        return out

    @torch.inference_mode()
    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Preprocessing, covariates: torch.Tensor | None = None
    ) -> MaskPrediction:
        """The :class:`MaskPrediction` of one 2D image file, in its original pixel grid."""
        unit, geometry = load_unit_image(path, prep)
        x = normalize(with_channels(torch.from_numpy(unit))[None], prep)
        was_training = model.training
        model.eval()
        logits = self._input_logits(model, x, prep)
        model.train(was_training)
        spacing = infer.pixel_spacing(pd.DataFrame(), 0, Path(path))
        return self.predict(logits, geometry=[geometry], spacing=[spacing])[0]


# -- helpers ---------------------------------------------------------------------------------------------------
def build_loss(name: str, *, sigmoid: bool) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MONAI losses for ``(B, C, H, W)`` logits.

    Sigmoid mode (binary/multi-label; targets ``(B, K, H, W)`` 0/1): ``dice`` = soft Dice, ``dice_ce`` = Dice +
    BCE, ``focal`` = sigmoid focal loss, ``dice_focal``. Softmax mode (targets ``(B, 1, H, W)`` class indices,
    one-hot encoded by MONAI): Dice over the foreground classes, + cross-entropy / focal. Dice is computed over
    the whole batch (``batch=True``), so images without foreground do not produce undefined per-image Dice.
    """
    from monai.losses import DiceCELoss, DiceFocalLoss, DiceLoss, FocalLoss

    act: dict[str, Any] = (
        {"sigmoid": True} if sigmoid else {"softmax": True, "to_onehot_y": True, "include_background": False}
    )
    if name == "dice":
        return DiceLoss(batch=True, **act)
    if name == "dice_ce":
        if sigmoid:
            dice, bce = DiceLoss(batch=True, sigmoid=True), nn.BCEWithLogitsLoss()
            return lambda logits, target: dice(logits, target) + bce(logits, target)
        return DiceCELoss(batch=True, **act)
    if name == "focal":
        return FocalLoss(use_softmax=not sigmoid, to_onehot_y=not sigmoid)
    if name == "dice_focal":
        return DiceFocalLoss(batch=True, **act)
    raise ConfigError(f"loss={name!r} is not available for segment; use one of {', '.join(LOSSES)}.")


def _present(channels: np.ndarray, names: list[str]) -> str:
    found = [n for n, c in zip(names, channels, strict=True) if c.any()]
    return "|".join(found) if found else BACKGROUND


def _labels(channels: np.ndarray) -> np.ndarray:
    """A class map ``(H, W)`` from ``(K, H, W)`` exclusive channels."""
    labels = np.zeros(channels.shape[1:], dtype=np.uint8)
    for k, channel in enumerate(channels):
        labels[channel] = k + 1
    return labels


def _metric_columns(
    mask_metrics: Callable[..., dict[str, np.ndarray]],
    truth: np.ndarray,
    pred: np.ndarray,
    names: list[str],
    spacing: tuple[float, float] | None,
) -> dict[str, Any]:
    px = mask_metrics(truth, pred, spacing=None)
    mm = mask_metrics(truth, pred, spacing=spacing) if spacing else None
    row: dict[str, Any] = {}
    for c, name in enumerate(names):
        key = infer.column_key(name)
        row[f"truth_area_px_{key}"] = int(px["truth_pixels"][c])
        row[f"overlap_px_{key}"] = int(px["overlap_pixels"][c])
        row[f"dice_{key}"] = float(px["dice"][c])
        row[f"iou_{key}"] = float(px["iou"][c])
        row[f"hd95_{key}"] = float(px["hd95"][c])
        row[f"asd_{key}"] = float(px["asd"][c])
        if mm is not None:
            row[f"hd95_mm_{key}"] = float(mm["hd95"][c])
            row[f"asd_mm_{key}"] = float(mm["asd"][c])
    return row


def _stack(frame: pd.DataFrame, keys: list[str], prefix: str) -> np.ndarray:
    """``(N, K)`` float array of the per-image columns ``{prefix}_{key}``."""
    return np.column_stack([pd.to_numeric(frame[f"{prefix}_{k}"]).to_numpy(float) for k in keys])


def _grid_columns(grid: dict[str, np.ndarray], names: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for c, name in enumerate(names):
        key = infer.column_key(name)
        row[f"dice_grid_{key}"] = float(grid["dice"][c])
        row[f"iou_grid_{key}"] = float(grid["iou"][c])
        for count in ("truth_pixels", "pred_pixels", "overlap_pixels"):
            row[f"{count}_grid_{key}"] = int(grid[count][c])
    return row


def _input_grid_report(
    frame: pd.DataFrame, keys: list[str], names: list[str], groups: Any, n_resamples: int, seed: int
) -> dict[str, Any]:
    """Dice/IoU on the letterboxed input grid (``dice_input_grid`` …), as papers that score resized masks do.

    Thin structures lose or gain pixels when resampled, so the two resolutions can differ; both are reported."""
    from osteon.metrics.segmentation import segmentation_report

    def stack(prefix: str) -> np.ndarray:
        return _stack(frame, keys, f"{prefix}_grid")

    undefined = np.full((len(frame), len(keys)), np.nan)
    per_image = {"dice": stack("dice"), "iou": stack("iou"), "hd95": undefined, "asd": undefined}
    per_image |= {c: stack(c) for c in ("truth_pixels", "pred_pixels", "overlap_pixels")}
    report = segmentation_report(per_image, class_names=names, groups=groups, n_resamples=n_resamples, seed=seed)
    headline = ("dice", "iou", "dice_positive", "iou_positive")
    return {f"{k}_input_grid": report[k] for k in headline} | {
        "input_grid": {
            "resolution": "the letterboxed model input (truth resampled as in training, masks decided alike)",
            "per_class": {n: {k: report["per_class"][n][k] for k in headline} for n in names},
        }
    }


def _unique_stem(path: Path, row: int, used: set[str]) -> str:
    stem = path.name.split(".")[0] or f"row{row}"
    if stem in used:
        stem = f"{stem}_{row}"
    used.add(stem)
    return stem
