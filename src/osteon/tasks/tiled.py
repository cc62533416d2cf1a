"""``tiled``: full-resolution classification of large 2D images (radiographs) from a bag of tiles.

A fracture line in a 2304×2880 radiograph is two or three pixels wide once the image is shrunk to 256 px. This task
keeps the resolution instead: every image is read once at the **tile scale** (``--tile-scale``, a fraction of its
native resolution; ``--tile-max-side`` caps the long side for mixed-size datasets), cached to disk as uint8 (uint16
for deeper sources) and read back memory-mapped (``OSTEON_VOLUME_CACHE``). It is cut into ``--tile-size`` tiles that
cover it (:mod:`osteon.data.tiles`); at most ``--max-tiles`` tiles per image and step go through the backbone — the
tiles with the most foreground at evaluation (the same every time), a random draw among the foreground tiles at
training time. ``--tile-context`` adds the whole image (letterboxed at ``--image-size``, resized to the tile size) as
one more instance: a two-scale model.

The model is :class:`~osteon.models.slices.SliceModel`, the bag-of-instances model of the ``slices`` task: one shared
backbone over the tiles (in chunks at inference, so memory grows with the chunk, not the tile count), tile features
pooled by gated attention (Ilse et al. 2018; ``--tile-pooling attention|max|mean``), a linear head. Targets, losses,
metrics (AUC with patient-bootstrap CIs), the operating point chosen on validation and the predictions table are
``classify``'s; the table adds ``tiles`` (tiles used), ``key_tile_xyxy`` (the tile that weighed most, in original
pixels) and its weight. ``osteon explain`` maps the attention weights and per-tile Grad-CAMs back onto the original
image (:mod:`osteon.explain.tiles`).

Limits of v1: grey input, no covariates; augmentation (the run's, radiograph-safe) is applied to each tile.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from osteon.data.datasets import DecodedImages
from osteon.data.manifest import Manifest
from osteon.data.tiles import choose_tiles, cut_tiles, foreground_fractions, tile_boxes, tile_origins
from osteon.data.transforms import Preprocessing
from osteon.errors import ConfigError, ImageReadError
from osteon.tasks._image import identity_frame
from osteon.tasks.base import TASKS, ClassPrediction, OutputWriter, TaskState
from osteon.tasks.classify import ClassificationTask
from osteon.tasks.slices import SliceClassificationTask, collate_series

_UNIT = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


@dataclass(frozen=True)
class TileOptions:
    """The tiling of a run (kept in ``TaskState.extra``): tile side, scale, long-side cap, bag size, context."""

    size: int = 256
    scale: float = 1.0
    max_side: int | None = None
    max_tiles: int = 16
    pooling: str = "attention"
    context: bool = False

    @classmethod
    def of(cls, state: TaskState) -> TileOptions:
        e = state.extra
        return cls(
            int(e.get("tile_size", 256)),
            float(e.get("tile_scale", 1.0)),
            int(e["tile_max_side"]) if e.get("tile_max_side") else None,
            int(e.get("max_tiles", 16)),
            str(e.get("pooling", "attention")),
            bool(e.get("tile_context", False)),
        )


@dataclass(frozen=True)
class TiledImage:
    """One image at the tile scale: ``pixels`` ``(H, W)`` uint8/uint16 (memory-mapped), its original ``(H, W)``."""

    pixels: np.ndarray
    original_hw: tuple[int, int]

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


def tiled_image(path: Path, *, scale: float, max_side: int | None) -> TiledImage:
    """The image of ``path`` at the tile scale, decoded once and cached (see the module docstring).

    The scale is ``scale`` times native, lowered so the long side is at most ``max_side`` when given. The cache key
    is the file's path, size and modification time and the scale, so an edited file is read again.

    Raises:
        ImageReadError: unreadable file, or a volume / multi-frame file.
    """
    from osteon.tasks.segment3d import cache_dir

    stat = path.stat()
    key = hashlib.sha1(f"tiles|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{scale}|{max_side}".encode())
    target = cache_dir() / f"{key.hexdigest()}.npy"
    sidecar = target.with_suffix(".json")
    if not (target.is_file() and sidecar.is_file()):
        pixels, original_hw = _decode_at_scale(path, scale, max_side)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, pixels)
        sidecar.write_text(json.dumps({"original_hw": list(original_hw)}))
        partial.replace(target)
    hw = json.loads(sidecar.read_text())["original_hw"]
    return TiledImage(np.load(target, mmap_mode="r"), (int(hw[0]), int(hw[1])))


def _decode_at_scale(path: Path, scale: float, max_side: int | None) -> tuple[np.ndarray, tuple[int, int]]:
    from osteon.io import read_image, to_grayscale_float

    image = read_image(path)
    if image.is_volume:
        raise ImageReadError(
            path,
            f"is a volume/multi-frame image {image.array.shape}; task 'tiled' takes 2D images.",
            "export the frame to use, or use --task slices for series.",
        )
    unit = to_grayscale_float(image)
    h, w = unit.shape
    factor = min(scale, max_side / max(h, w)) if max_side else scale
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    if size != (h, w):
        t = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))[None, None]
        resized = nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
        unit = resized[0, 0].clamp(0, 1).numpy()
    deep = image.bits_stored > 8 or np.asarray(image.array).dtype not in (np.uint8, np.bool_)
    dtype, top = (np.uint16, 65535.0) if deep else (np.uint8, 255.0)
    return np.round(unit * top).astype(dtype), (h, w)


def context_instance(letterboxed: np.ndarray, size: int) -> torch.Tensor:
    """``(size, size)`` float32: the whole image (letterboxed at ``image_size``) resized to the tile size."""
    t = torch.as_tensor(np.asarray(letterboxed, dtype=np.float32))[None, None]
    if t.shape[-1] != size:
        t = nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0, 0]


class TileDataset(Dataset):
    """Items ``{"image": (T, 1, s, s) normalised, "target", "index"}``: a bag of tiles (context first if any).

    Args:
        images: Every item's :class:`TiledImage`.
        contexts: ``(N, S, S)`` letterboxed whole images for the context instance, or ``None``.
        targets: ``(N,)`` (or ``(N, C)``) targets as classify encodes them; rows: Manifest rows (``index``).
        random_draw: Draw tiles at random among the foreground ones (training) instead of the most foreground.
    """

    def __init__(
        self,
        images: list[TiledImage],
        contexts: np.ndarray | None,
        targets: np.ndarray,
        rows: np.ndarray,
        prep: Preprocessing,
        options: TileOptions,
        *,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        random_draw: bool = False,
    ) -> None:
        self.images, self.contexts, self.prep, self.options = images, contexts, prep, options
        self.targets, self.indices = np.asarray(targets), np.asarray(rows)
        self.augment, self.random_draw = augment, random_draw
        self.grids = [tile_origins(*im.hw, options.size) for im in images]
        self.fractions = [
            foreground_fractions(im.pixels, grid, options.size) for im, grid in zip(images, self.grids, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.images)

    def fixed(self) -> TileDataset:
        """The same items with the deterministic tiles (most foreground) and no augmentation (for predictions)."""
        out = copy.copy(self)
        out.augment, out.random_draw = None, False
        return out

    def chosen(self, i: int) -> np.ndarray:
        """``(T, 2)`` origins of the tiles item ``i`` uses (random among foreground tiles when ``random_draw``)."""
        rng = np.random.default_rng(int(torch.randint(2**31 - 1, ()).item())) if self.random_draw else None
        return self.grids[i][choose_tiles(self.fractions[i], self.options.max_tiles, rng=rng)]

    def bag(self, i: int, origins: np.ndarray) -> torch.Tensor:
        """``(T, 1, s, s)`` normalised instances of item ``i``: the context (if any), then the tiles at ``origins``."""
        pixels = self.images[i].pixels
        tiles = torch.from_numpy(cut_tiles(np.asarray(pixels), origins, self.options.size).astype(np.float32))
        units = list(tiles / _UNIT.get(pixels.dtype, 1.0))
        if self.contexts is not None:
            units.insert(0, context_instance(self.contexts[i], self.options.size))
        if self.augment is not None:
            units = [self.augment(u[None])[0].clamp(0, 1) for u in units]
        return (torch.stack(units)[:, None] - self.prep.mean) / self.prep.std

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "image": self.bag(i, self.chosen(i)),
            "target": torch.as_tensor(self.targets[i]),
            "index": int(self.indices[i]),
        }


@TASKS.register("tiled")
class TiledClassificationTask(ClassificationTask):
    """Full-resolution classification from a bag of tiles (see the module docstring); after the logits, classify."""

    name: ClassVar[str] = "tiled"
    colour_input: ClassVar[bool] = False
    collate_fn = staticmethod(collate_series)
    # the same model calls as the 2.5D task: a bag (B, T, 1, s, s) and its padding mask
    training_loss = SliceClassificationTask.training_loss
    validation_records = SliceClassificationTask.validation_records

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        state = ClassificationTask.setup(manifest, target=target, positive_class=positive_class, loss=loss)
        return TaskState("tiled", state.target, state.class_names, state.positive_class, state.multilabel, state.loss)

    @classmethod
    def configure(cls, state: TaskState, cfg: Any) -> TaskState:
        from osteon.models.slices import POOLINGS

        pooling = str(getattr(cfg, "tile_pooling", None) or "attention")
        if pooling not in POOLINGS:
            raise ConfigError(f"tile_pooling={pooling!r} is not one of {', '.join(POOLINGS)}. Fix: --tile-pooling max.")
        if getattr(cfg, "covariates", None):
            raise ConfigError("task 'tiled' does not use covariates yet. Fix: drop --covariates.")
        max_side = getattr(cfg, "tile_max_side", None)
        size = int(getattr(cfg, "tile_size", 256))
        if max_side is not None and max_side < size:
            raise ConfigError(
                f"tile_max_side={max_side} is below tile_size={size}. Fix: --tile-max-side {size} or more."
            )
        state.extra = {
            **state.extra,
            "pooling": pooling,
            "tile_size": size,
            "tile_scale": float(getattr(cfg, "tile_scale", 1.0)),
            "tile_max_side": max_side,
            "max_tiles": int(getattr(cfg, "max_tiles", 16)),
            "tile_context": bool(getattr(cfg, "tile_context", False)),
            "image_size": int(cfg.image_size),
        }
        return state

    @property
    def options(self) -> TileOptions:
        return TileOptions.of(self.state)

    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        from osteon.models.slices import create_slice_model

        if covariate_dim:
            raise ConfigError("task 'tiled' does not use covariates yet. Fix: drop --covariates.")
        return create_slice_model(
            model, self.num_outputs, in_chans=1, pooling=self.options.pooling, pretrained=pretrained
        )

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
        """Tiles of ``rows``; ``decoded`` (letterboxed at ``image_size``) gives the context instance. The training
        set (the one with ``augment``) draws its tiles at random among the foreground ones."""
        o = self.options
        paths = manifest.paths_of(rows)
        missing = [str(p) for p in paths if not Path(p).is_file()]
        if missing:
            raise ConfigError(
                f"task 'tiled' reads every image from its file at full resolution; {missing[0]} is not a file "
                f"({len(missing)} of {len(paths)}). In-memory frames and crops (video, pipeline crop stages) are not "
                "supported. Fix: pass image files, or use a classify run for this stage."
            )
        images = [tiled_image(p, scale=o.scale, max_side=o.max_side) for p in paths]
        if self.state.target in manifest.frame:
            targets = self.targets(manifest)[rows]
        else:
            targets = np.zeros(len(rows), dtype=np.int64)
        contexts = decoded.stack if o.context else None
        return TileDataset(images, contexts, targets, rows, prep, o, augment=augment, random_draw=augment is not None)

    # -- results --------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 8,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """classify's table plus ``tiles`` (used), ``tiles_total`` (covering the image), ``key_tile_xyxy`` (the tile
        that weighed most, original pixels) and ``key_tile_weight``."""
        if not isinstance(dataset, TileDataset):
            raise TypeError(f"task 'tiled' predicts a TileDataset (from make_dataset); got {type(dataset).__name__}.")
        fixed = dataset.fixed()
        was_training = model.training
        model.eval()
        chunks, weights = [], []
        for batch in DataLoader(fixed, batch_size=batch_size, shuffle=False, collate_fn=collate_series):
            chunks.append(self.scores(model(batch["image"], batch["present"])))
            last = getattr(model, "last_weights", None)
            weights.extend([] if last is None else list(last.cpu().numpy()))
        model.train(was_training)
        scores = np.concatenate(chunks) if chunks else np.zeros((0, self.num_outputs), dtype=np.float32)
        table = self.prediction_frame(scores).reset_index(drop=True)
        counts, boxes, key_weights = [], [], []
        for i in range(len(fixed)):
            origins = fixed.chosen(i)
            counts.append(len(origins))
            if i >= len(weights):
                boxes.append("")
                key_weights.append(np.nan)
                continue
            image, w = fixed.images[i], weights[i][: len(origins) + int(fixed.contexts is not None)]
            key = int(np.argmax(w))
            if fixed.contexts is not None and key == 0:
                box = (0.0, 0.0, float(image.original_hw[1]), float(image.original_hw[0]))
            else:
                tile = origins[key - int(fixed.contexts is not None)][None]
                box = tuple(tile_boxes(tile, self.options.size, image.hw, image.original_hw)[0])
            boxes.append(",".join(f"{v:.0f}" for v in box))
            key_weights.append(float(w[key]))
        table["tiles"], table["tiles_total"] = counts, [len(g) for g in fixed.grids]
        table["key_tile_xyxy"], table["key_tile_weight"] = boxes, key_weights
        return pd.concat([identity_frame(manifest, dataset.indices, self.state, numeric=False), table], axis=1)

    @torch.inference_mode()
    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Preprocessing, covariates: torch.Tensor | None = None
    ) -> ClassPrediction:
        """The prediction of one image file from its bag of tiles."""
        x, _, _ = image_bag(self.state, path, prep)
        was_training = model.training
        model.eval()
        outputs = model(x)
        model.train(was_training)
        return self.predict(outputs)[0]


def image_bag(state: TaskState, path: str | Path, prep: Preprocessing) -> tuple[torch.Tensor, np.ndarray, TiledImage]:
    """``(x (1, T, 1, s, s), origins (T', 2), image)`` of one file: the model input (context first when the run uses
    one), the origins of its tiles (at the tile scale) and the image at the tile scale."""
    from osteon.data.transforms import load_unit_image

    options = TileOptions.of(state)
    image = tiled_image(Path(path), scale=options.scale, max_side=options.max_side)
    contexts = load_unit_image(path, prep)[0][None] if options.context else None
    dataset = TileDataset([image], contexts, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), prep, options)
    origins = dataset.chosen(0)
    return dataset.bag(0, origins)[None], origins, image
