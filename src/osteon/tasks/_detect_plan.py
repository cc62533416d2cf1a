"""The detection plan: model choices derived from the training boxes, written into the run (``RUN/plan.json``).

Like nnU-Net's plans, the decisions that depend on the data are computed once, saved, and read back
(the plan also lives in ``TaskState.extra["plan"]``, so ``model.pt`` carries it and
``Predictor.from_run`` rebuilds the same detector):

* **Box statistics** of the *train* split in input pixels at ``image_size`` (side ``sqrt(w·h)``,
  aspect ``h/w``): percentiles, boxes per image.
* **Anchors** (RetinaNet: 3 sizes per level on P3–P7; Faster R-CNN: 1 per level on P2–P6). The smallest
  anchor is the 5th percentile of the box sides (clipped to [stride/2, 4·stride] of the first level), then
  doubling per level, so the anchors span the boxes the data has instead of COCO's 32–512 px.
  Aspect ratios are the 15th/50th/85th percentiles of ``h/w`` (clipped to 1/4..4). FCOS is anchor-free:
  its "anchors" are the level strides (torchvision's convention); YOLO is anchor-free as well.
* **Head width.** The FPN and head width is torchvision's 256 with a GPU, 128 on a CPU-only machine
  (the heads' compute falls 4×; it dominates detection cost on CPUs). The plan records it.
* **Faster R-CNN's RoI head** is sized by the boxes per image: ``100·m`` proposals per test image and
  twice that in training (``m`` = most boxes in a train image; clipped to torchvision's 1000/2000),
  ``128·m`` sampled RoIs per training image (clipped to 128..512), and the two fully connected layers
  1024 wide with a GPU, 256 on a CPU. torchvision's defaults are made for COCO's up to 100 objects per
  image; with one fracture per radiograph they spend almost all of the detector's compute on the RoI
  head (about 6× the ResNet-18 backbone at 128 px).
* **Training crops** (``train_crop``): the fully convolutional default detector (``centernet``) trains on crops
  from ``CROP_FROM_SIZE`` up (``patch_size`` overrides), half of them on a finding, and predicts on the whole
  image; the other detectors train on whole images. The crop's side is sized by the train boxes: four median
  box sides of context and room for 95 % of the boxes whole (``CROP_CONTEXT``, ``CROP_ROOM``), a multiple of 32
  between ``MIN_CROP`` and half the input side (FracAtlas at 512 px: 128).
* **Input size.** ``image_size`` is the config's; the plan records the smallest multiple of 32 at which
  95 % of the boxes are at least 12 pixels wide, and warns when the chosen size is smaller.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from osteon.data.boxes import box_records
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError, UnknownNameError
from osteon.models.centernet import DEFAULT_ENCODER as CENTERNET_ENCODER
from osteon.models.detection import (
    LEVEL_STRIDES,
    NATIVE_DETECTORS,
    RESNET_ENCODERS,
    TORCHVISION_DETECTORS,
    YOLO_DETECTORS,
)

MIN_BOX_PX = 12  # boxes smaller than this in the input are hard for any detector
DEFAULT_ARCHITECTURE = {"torchvision": "centernet", "yolo": "yolov8n"}
CROP_FROM_SIZE = 384  # centernet: at this input size and above, train on crops by default
CROP_CONTEXT = 4.0  # a crop spans this many median box sides ...
CROP_ROOM = 1.5  # ... and at least this many 95th-percentile box sides
MIN_CROP = 96
BACKENDS = ("torchvision", "yolo")


class SmallBoxWarning(UserWarning):
    """At the chosen input size, many boxes are only a few pixels wide."""


def resolve_architecture(model: str | None, encoder: str | None, backend: str) -> tuple[str, str]:
    """``(architecture, encoder)`` from ``--model``/``--encoder``/``--backend``.

    ``--model`` names the detector (``centernet``, ``retinanet``, ``fcos``, ``faster_rcnn``; with ``--backend
    yolo`` ``yolov8n``/``s``/``m``, ``yolo26n``/``s``, ``yolo26n-p2``). ``None`` (no ``--model``) is the
    backend's default detector with its default encoder; a model that is an encoder name means the
    backend's default detector on that encoder.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}.")
    name = (model or DEFAULT_ARCHITECTURE[backend]).lower()
    known = (*NATIVE_DETECTORS, *TORCHVISION_DETECTORS) if backend == "torchvision" else YOLO_DETECTORS
    if name in known:
        architecture = name
    elif name in RESNET_ENCODERS or name.startswith("timm:"):
        architecture, encoder = DEFAULT_ARCHITECTURE[backend], encoder or name
    elif backend == "torchvision" and name in YOLO_DETECTORS:
        raise ConfigError(f"model={model!r} is a YOLO model. Fix: add --backend yolo (extra 'yolo').")
    else:
        raise UnknownNameError(f"{backend} detector", name, list(known))
    if architecture == "centernet":  # any timm encoder; ResNets are timm's
        chosen = (encoder or CENTERNET_ENCODER).lower()
        return architecture, chosen if chosen.startswith("timm:") else f"timm:{chosen}"
    encoder = (encoder or "resnet18").lower() if backend == "torchvision" else "yolo"
    if backend == "torchvision" and encoder not in RESNET_ENCODERS and not encoder.startswith("timm:"):
        raise UnknownNameError("detection encoder", encoder, [*RESNET_ENCODERS, "timm:<name>"])
    return architecture, encoder


def box_statistics(manifest: Manifest, column: str, *, image_size: int) -> dict[str, Any]:
    """Statistics of the boxes of ``manifest`` in input pixels (letterboxed to ``image_size``)."""
    from osteon.data.checks import image_size as header_size

    aspects, rel_sides, per_image = [], [], []
    frame = manifest.frame
    for i in range(len(frame)):
        value = frame.at[i, column]
        if not isinstance(value, str) or not value:
            continue
        items = box_records(value, image=str(frame.at[i, "image"]), column=column)
        per_image.append(len(items))
        if not items:
            continue
        size = _row_size(frame, i) or header_size(manifest.resolve(frame.at[i, "image"]))
        if size is None:
            continue
        longest = max(size)
        for item in items:
            x1, y1, x2, y2 = (float(v) for v in item["xyxy"])
            w, h = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
            rel_sides.append(math.sqrt(w * h) / longest)
            aspects.append(h / w)
    rel = np.asarray(rel_sides, dtype=float)
    stats: dict[str, Any] = {
        "n_images": len(per_image),
        "n_images_with_boxes": int(sum(n > 0 for n in per_image)),
        "n_boxes": len(rel),
        "boxes_per_image_max": int(max(per_image, default=0)),
        "image_size": image_size,
    }
    if len(rel):
        q = [5, 25, 50, 75, 95]
        stats["side_px_percentiles"] = dict(
            zip(map(str, q), np.percentile(rel * image_size, q).round(1).tolist(), strict=True)
        )
        stats["aspect_hw_percentiles"] = dict(
            zip(["15", "50", "85"], np.percentile(aspects, [15, 50, 85]).round(3).tolist(), strict=True)
        )
        stats["relative_side_p5"] = float(np.percentile(rel, 5))
    return stats


def plan_anchors(architecture: str, stats: dict[str, Any]) -> tuple[list[list[float]], list[float]]:
    """Anchor sizes per level and aspect ratios for ``architecture`` from :func:`box_statistics`."""
    if architecture in YOLO_DETECTORS or architecture in NATIVE_DETECTORS:
        return [], []
    strides = LEVEL_STRIDES[architecture]
    if architecture == "fcos":
        return [[float(s)] for s in strides], [1.0]
    sides = stats.get("side_px_percentiles")
    default_base = 4.0 * strides[0] if architecture == "retinanet" else 8.0 * strides[0]
    base = float(np.clip(sides["5"], strides[0] / 2, 4 * strides[0])) if sides else default_base
    if architecture == "retinanet":
        scales = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
        sizes = [[round(base * 2**level * s, 1) for s in scales] for level in range(len(strides))]
    else:
        sizes = [[round(base * 2**level, 1)] for level in range(len(strides))]
    aspects = stats.get("aspect_hw_percentiles")
    ratios = sorted({round(float(np.clip(v, 0.25, 4.0)), 2) for v in aspects.values()}) if aspects else [0.5, 1.0, 2.0]
    if len(ratios) < 3:  # near-identical percentiles: keep three distinct shapes around the median
        mid = ratios[len(ratios) // 2]
        ratios = [round(mid / 2, 2), mid, round(mid * 2, 2)]
    return sizes, ratios


def plan_roi_head(architecture: str, stats: dict[str, Any], *, gpu: bool) -> dict[str, Any]:
    """Faster R-CNN's proposal counts, RoI samples and head width from :func:`box_statistics` (``{}`` for others)."""
    if architecture != "faster_rcnn":
        return {}
    most = max(1, int(stats.get("boxes_per_image_max", 1)))
    test = int(np.clip(100 * most, 100, 1000))
    return {
        "proposals": [min(2 * test, 2000), test],
        "roi_samples": int(np.clip(128 * most, 128, 512)),
        "box_head_width": 1024 if gpu else 256,
    }


def plan_train_crop(
    architecture: str, image_size: int, patch_size: int | None, stats: dict[str, Any] | None = None
) -> int | None:
    """Side of the training crops (``None``: whole images). ``patch_size`` when given; else, for centernet at
    ``image_size ≥ CROP_FROM_SIZE``, ``CROP_CONTEXT`` median box sides and at least ``CROP_ROOM`` 95th-percentile
    sides (from ``stats``, :func:`box_statistics`), a multiple of 32 from ``MIN_CROP`` to half the input side.

    Small crops buy optimiser steps: on FracAtlas at 512 px (median fracture side 30 px), 128-px crops made twice
    the epochs of 256-px ones in the same 8 minutes and a higher validation mAP (docs/decisions.md)."""
    if patch_size is not None:
        if architecture not in NATIVE_DETECTORS:
            raise ConfigError(
                f"patch_size={patch_size}: only the fully convolutional centernet trains on crops; "
                f"{architecture} needs whole images. Fix: drop --patch-size or use --model centernet."
            )
        if patch_size > image_size:
            raise ConfigError(f"patch_size={patch_size} is larger than image_size={image_size}. Fix: lower it.")
        return None if patch_size == image_size else int(patch_size)
    if architecture not in NATIVE_DETECTORS or image_size < CROP_FROM_SIZE:
        return None
    half = max(32, image_size // 2 // 32 * 32)
    sides = (stats or {}).get("side_px_percentiles")
    if not sides:
        return half
    wanted = max(CROP_CONTEXT * sides["50"], CROP_ROOM * sides["95"])
    return int(min(half, max(MIN_CROP, 32 * math.ceil(wanted / 32))))


def recommended_image_size(stats: dict[str, Any]) -> int | None:
    """Smallest multiple of 32 at which the 5th-percentile box side is ≥ ``MIN_BOX_PX`` pixels."""
    rel = stats.get("relative_side_p5")
    if not rel:
        return None
    return int(min(2048, 32 * math.ceil(MIN_BOX_PX / rel / 32)))


def make_plan(
    manifest: Manifest,
    *,
    column: str,
    class_names: list[str],
    model: str | None,
    encoder: str | None,
    backend: str,
    image_size: int,
    patch_size: int | None = None,
    score_threshold: float,
    input_mean: float,
    input_std: float,
    flip_test: bool = True,
) -> dict[str, Any]:
    """The plan (a JSON-able dict) from the *train* rows of ``manifest``; warns when boxes are small."""
    architecture, encoder = resolve_architecture(model, encoder, backend)
    gpu = torch.cuda.is_available()
    fpn_channels = 256 if gpu else 128
    train = manifest.split("train") if "split" in manifest.frame else manifest
    stats = box_statistics(train, column, image_size=image_size)
    if stats["n_boxes"] == 0:
        raise ConfigError(
            f"{manifest.name}: the train split has no boxes in column {column!r}; a detector cannot learn. "
            "Fix: check the split (--split-file) or the annotations."
        )
    sizes, ratios = plan_anchors(architecture, stats)
    recommended = recommended_image_size(stats)
    notes = []
    if recommended and image_size < recommended:
        p5 = stats["side_px_percentiles"]["5"]
        note = (
            f"at image_size={image_size} the smallest 5% of boxes are ≤ {p5} px; "
            f"--image-size {recommended} would make them ≥ {MIN_BOX_PX} px (slower)."
        )
        notes.append(note)
        warnings.warn(f"{manifest.name}: {note}", SmallBoxWarning, stacklevel=3)
    return {
        "backend": backend,
        "architecture": architecture,
        "encoder": encoder,
        "num_classes": len(class_names),
        "class_names": class_names,
        "image_size": image_size,
        "anchor_sizes": sizes,
        "aspect_ratios": ratios,
        "score_threshold": score_threshold,
        "nms_iou": 0.5 if backend == "torchvision" else 0.7,
        "detections_per_image": 100,
        "input_mean": input_mean,
        "input_std": input_std,
        "fpn_channels": fpn_channels,
        **({"quality_head": True, "flip_test": flip_test} if architecture == "centernet" else {}),
        **plan_roi_head(architecture, stats, gpu=gpu),
        "train_crop": plan_train_crop(architecture, image_size, patch_size, stats),
        "box_statistics": stats,
        "recommended_image_size": recommended,
        "notes": notes,
    }


def write_plan(plan: dict[str, Any], path: Path) -> Path:
    """Write the plan as indented JSON (``RUN/plan.json``)."""
    path.write_text(json.dumps(plan, indent=2))
    return path


def _row_size(frame: Any, i: int) -> tuple[int, int] | None:
    if "width" not in frame or "height" not in frame:
        return None
    w, h = frame.at[i, "width"], frame.at[i, "height"]
    try:
        return (int(w), int(h)) if not (np.isnan(float(w)) or np.isnan(float(h))) else None
    except (TypeError, ValueError):
        return None
