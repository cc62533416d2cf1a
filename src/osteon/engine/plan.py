"""``osteon plan DATA``: fingerprint a dataset and recommend a task and a training config, with the reasons.

As nnU-Net plans a segmentation from the data's fingerprint (image sizes, spacing, class balance), this plans every
strategy the annotations allow — classify, grade, regress, detect, segment — from:

* **the table**: labels and their balance, grades (whole numbers 0..K), numeric targets, boxes, polygons, masks,
  patients, laterality, the dataset's own split;
* **a sample of the images** (up to ``sample`` files, read fully): sizes, bit depth, colour, pixel spacing,
  modality, volumes;
* **the files' content**: byte-identical duplicates (SHA-256);
* **object sizes**: boxes relative to their image, mask foreground fractions;
* **the machine**: GPU or CPU, which sets the model size, batch size and the number of epochs.

Rules are deliberately simple and each choice carries its reason (``plan.yaml``). ``osteon train --plan
plan.yaml`` starts from the recommended strategy's config (or ``--task``'s); flags and a YAML config win.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from osteon.data.manifest import Manifest
from osteon.errors import ConfigError

#: The order in which strategies are recommended: the richest annotation first.
PREFERENCE = ("segment", "detect", "grade", "classify", "regress")
#: Training steps (optimizer updates) planned for a run: enough to converge from pretrained-size models.
TARGET_STEPS = {"gpu": 4000, "cpu": 600}
#: Structures whose median side is below this many input pixels get a warning in the segment plan.
SMALL_OBJECT_PX = 24


def machine() -> dict[str, Any]:
    """The machine the plan is for: GPU name and memory (if any), CPU count."""
    info: dict[str, Any] = {"accelerator": "cpu", "gpu": None, "gpu_memory_gb": None, "cpu_count": os.cpu_count()}
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info.update(accelerator="gpu", gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1))
    except Exception:  # no torch build with CUDA: plan for the CPU
        pass
    return info


def fingerprint(manifest: Manifest, *, sample: int = 48, hashes: bool = True) -> dict[str, Any]:
    """What the plan is based on (JSON-able); reads ``sample`` images spread over the dataset."""
    from osteon.data.summary import summarize

    frame = manifest.frame
    summary = summarize(manifest)
    fp: dict[str, Any] = {
        "name": manifest.name,
        "images": len(frame),
        "patients": summary["patients"],
        "images_without_patient": summary["images_without_patient"],
        "splits": summary["splits"],
        "annotations": summary["annotations"],
        "formats": summary["formats"],
    }
    if summary["patients"]:
        per = frame["patient_id"].dropna().astype(str).value_counts()
        fp["images_per_patient"] = {"mean": round(float(per.mean()), 2), "max": int(per.max())}
    if "label" in frame and frame["label"].notna().any():
        fp["labels"] = _labels(frame["label"])
    if "target" in frame:
        target = pd.to_numeric(frame["target"], errors="coerce").dropna()
        if len(target):
            fp["target"] = {"min": float(target.min()), "mean": float(target.mean()), "max": float(target.max())}
    if "laterality" in frame:
        fp["laterality"] = {str(k): int(v) for k, v in frame["laterality"].dropna().astype(str).value_counts().items()}
    fp["image_sample"] = _image_sample(manifest, sample)
    if summary["annotations"]["boxes"]:
        fp["boxes"] = _box_sizes(manifest)
    if summary["annotations"]["masks"]:
        fp["masks"] = _mask_sample(manifest, sample)
    if hashes:
        from osteon.data.hashing import content_hashes

        digest = content_hashes(manifest, progress=False)
        duplicated = digest.notna() & digest.duplicated(keep=False)
        fp["duplicates"] = {
            "images_in_duplicate_groups": int(duplicated.sum()),
            "groups": int(digest[duplicated].nunique()),
        }
    return fp


def _labels(column: pd.Series) -> dict[str, Any]:
    values = column.dropna().astype(str)
    counts = values.value_counts()
    multilabel = bool(values.str.contains("|", regex=False).any())
    numeric = pd.to_numeric(counts.index.to_series(), errors="coerce")
    grades = bool(
        not multilabel
        and numeric.notna().all()
        and (numeric % 1 == 0).all()
        and len(counts) >= 3
        and set(numeric.astype(int)) == set(range(int(numeric.min()), int(numeric.max()) + 1))
    )
    return {
        "classes": {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))},
        "n_classes": len(counts),
        "imbalance_ratio": round(float(counts.max() / max(counts.min(), 1)), 2),
        "multilabel": multilabel,
        "consecutive_whole_numbers": grades,
    }


def _spread(rows: int, n: int) -> np.ndarray:
    return np.unique(np.linspace(0, rows - 1, min(n, rows)).round().astype(int)) if rows else np.array([], int)


def _image_sample(manifest: Manifest, n: int) -> dict[str, Any]:
    from osteon.io import read_image

    heights, widths, bits, rgb, volumes, spacing, modality, errors = [], [], [], 0, 0, [], [], 0
    rows = _spread(len(manifest), n)
    for row in rows:
        try:
            image = read_image(manifest.resolve(manifest.frame["image"].iloc[row]))
        except Exception:
            errors += 1
            continue
        shape = image.array.shape
        is_rgb = image.photometric == "RGB"
        colour = is_rgb and _true_colour(image.array)  # grey pictures stored as RGB (JPEG radiographs) are grey
        h, w = (shape[-3], shape[-2]) if is_rgb else (shape[-2], shape[-1])
        heights.append(int(h))
        widths.append(int(w))
        bits.append(int(image.bits_stored))
        rgb += colour
        volumes += image.is_volume
        if image.spacing:
            spacing.append(float(np.mean(image.spacing[-2:])))
        if image.modality:
            modality.append(str(image.modality))
    read = len(heights)
    out: dict[str, Any] = {"read": read, "unreadable": errors}
    if read:
        short = np.minimum(heights, widths)
        out.update(
            {
                "height": _stats(heights),
                "width": _stats(widths),
                "short_side_median": int(np.median(short)),
                "bits_stored": {str(b): bits.count(b) for b in sorted(set(bits))},
                "rgb_fraction": round(rgb / read, 2),  # true colour (channels differ), not grey stored as RGB
                "volumes": volumes,
                "spacing_mm_median": round(float(np.median(spacing)), 4) if spacing else None,
                "modality": {m: modality.count(m) for m in sorted(set(modality))},
            }
        )
    return out


def _true_colour(array: np.ndarray) -> bool:
    """True when the colour channels of an ``(..., 3)`` image differ (more than JPEG noise of a grey picture)."""
    pixels = np.asarray(array, dtype=np.float32).reshape(-1, array.shape[-1])[:, :3]
    spread = np.abs(pixels - pixels.mean(axis=1, keepdims=True)).max(axis=1)
    return bool(np.mean(spread > 0.02 * max(float(pixels.max()), 1.0)) > 0.01)


def _stats(values: list[int]) -> dict[str, int]:
    return {"min": int(np.min(values)), "median": int(np.median(values)), "max": int(np.max(values))}


def _box_sizes(manifest: Manifest) -> dict[str, Any]:
    """Boxes' side (√area) relative to the image's side (√area); image sizes from the file headers."""
    from osteon.data.boxes import box_records
    from osteon.data.checks import image_size

    relative, per_image, classes = [], [], {}
    for i, value in manifest.frame["boxes"].items():
        if not isinstance(value, str) or not value.strip():
            continue
        try:
            records = box_records(value)
        except Exception:
            continue
        if not records:
            continue
        per_image.append(len(records))
        size = image_size(manifest.resolve(manifest.frame["image"].loc[i]))
        for r in records:
            classes[r["label"]] = classes.get(r["label"], 0) + 1
            x1, y1, x2, y2 = r["xyxy"]
            if size and x2 > x1 and y2 > y1:
                relative.append(math.sqrt((x2 - x1) * (y2 - y1)) / math.sqrt(size[0] * size[1]))
    out: dict[str, Any] = {"classes": classes, "max_per_image": max(per_image) if per_image else 0}
    if relative:
        rel = np.array(relative)
        out["relative_side"] = {
            "p10": round(float(np.percentile(rel, 10)), 4),
            "median": round(float(np.median(rel)), 4),
            "p90": round(float(np.percentile(rel, 90)), 4),
        }
    return out


def _mask_sample(manifest: Manifest, n: int) -> dict[str, Any]:
    from osteon.data.masks import read_label_map

    frame = manifest.frame
    rows = np.flatnonzero(frame["mask"].notna().to_numpy())
    fractions, values = [], set()
    for row in rows[_spread(len(rows), n)]:
        try:
            mask = read_label_map(manifest.resolve(str(frame["mask"].iloc[row])))
        except Exception:
            continue
        fractions.append(float((mask > 0).mean()))
        values |= {int(v) for v in np.unique(mask)}
    if not fractions:
        return {"read": 0}
    return {
        "read": len(fractions),
        "foreground_fraction": {
            "min": round(min(fractions), 4),
            "median": round(float(np.median(fractions)), 4),
            "max": round(max(fractions), 4),
        },
        "values": sorted(values),
        "empty": sum(f == 0 for f in fractions),
    }


# -- recommendations ----------------------------------------------------------------------------------------
def _round32(value: float, low: int, high: int) -> int:
    return int(min(high, max(low, 32 * math.ceil(value / 32))))


def _epochs(n_train: int, batch: int, where: str) -> int:
    steps_per_epoch = max(1, math.ceil(n_train / batch))
    return int(min(100, max(5, round(TARGET_STEPS[where] / steps_per_epoch))))


def _common(
    fp: dict[str, Any], where: str, *, class_balance: bool = False
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Choices every strategy shares: split, augmentation, class weighting, warnings."""
    cfg: dict[str, Any] = {}
    why: dict[str, str] = {}
    warn: list[str] = []
    sample = fp.get("image_sample", {})
    laterality = fp.get("laterality", {})
    both_sides = {"L", "R"} <= {k.upper()[:1] for k in laterality}
    ultrasound = "US" in sample.get("modality", {})
    cfg["hflip"] = bool(both_sides)
    why["hflip"] = (
        "left and right sides both occur in the data (laterality column), so a mirrored image is a realistic one"
        if both_sides
        else "no laterality column showing both sides: a mirror image may not occur in practice (side markers, "
        "ultrasound probe orientation), so flips are off; turn on with --hflip where the anatomy allows"
    )
    cfg["rotate_degrees"] = 5.0 if ultrasound else 10.0
    why["rotate_degrees"] = (
        "ultrasound planes are acquired in a standard orientation: small rotations only"
        if ultrasound
        else "radiographs are positioned by protocol but not exactly: ±10°"
    )
    why["vertical flips"] = "never: anatomy has an up and a down"
    labels = fp.get("labels") or {}
    if class_balance and labels.get("imbalance_ratio", 1) > 3:
        cfg["class_weighting"] = "loss"
        why["class_weighting"] = f"the classes are imbalanced ({labels['imbalance_ratio']}:1): weight the loss"
    if not fp.get("patients"):
        warn.append("no patient ids: splits are by image, so one patient's images may land on both sides (leakage)")
    duplicates = (fp.get("duplicates") or {}).get("images_in_duplicate_groups", 0)
    if duplicates:
        warn.append(f"{duplicates} images are byte-identical copies of others: splits keep each group together")
    splits = fp.get("splits", {})
    if {"train", "val", "test"} <= set(splits):
        why["split"] = "the dataset's own train/val/test split is used (checked for patients in two splits)"
    else:
        cfg["val_fraction"], cfg["test_fraction"] = 0.15, 0.15
        why["split"] = "no complete split in the data: 15%/15% of patients for validation and test, grouped"
    n = fp["images"]
    if n < 100:
        warn.append(
            f"only {n} images: too few to train a model that generalises; use them to check loading and the "
            "pipeline, or fine-tune a model trained elsewhere"
        )
    elif n < 600:
        warn.append(
            f"only {n} images: a 15% test set is small; report cross-validation too (`osteon cv --folds 5`) and "
            "read every interval"
        )
    if sample.get("rgb_fraction", 0) > 0.5:
        cfg["channels"] = "rgb"
        why["channels"] = (
            "most sampled images are in true colour (their RGB channels differ), e.g. Doppler or annotated screenshots"
        )
    return cfg, why, warn


def _classify_like(fp: dict[str, Any], where: str, *, ordinal: bool = False, classes: bool = True) -> dict[str, Any]:
    cfg, why, warn = _common(fp, where, class_balance=classes)
    short = fp.get("image_sample", {}).get("short_side_median", 224)
    rel = (fp.get("boxes") or {}).get("relative_side", {}).get("p10")
    if rel:
        size = _round32(16 / rel, 224, 640 if where == "gpu" else 384)
        why["image_size"] = (
            f"the smallest findings (10th percentile of box sides) are {rel:.1%} of the image side; {size} px keeps "
            "them at ≥ 16 px where the network can see them"
        )
    else:
        size = _round32(min(short, 224), 64, 224) if short < 224 else 224
        why["image_size"] = f"{size} px: the size ImageNet backbones are made for" + (
            f" (images are only {short} px)" if short < 224 else f" (images' short side {short} px)"
        )
    cfg["image_size"] = size
    cfg["model"] = ("convnext_tiny" if size <= 384 else "resnet50") if where == "gpu" else "resnet18"
    why["model"] = (
        "a GPU is available: a modern mid-size backbone"
        if where == "gpu"
        else "CPU only: a small backbone trains in time"
    )
    cfg["batch_size"] = (32 if size <= 384 else 16) if where == "gpu" else 16
    if ordinal:
        cfg["loss"] = "corn"
        why["loss"] = "grades are ordered: CORN's ordinal loss respects the order (errors of one grade cost less)"
    n_train = int(fp["images"] * 0.7)
    cfg["epochs"] = _epochs(n_train, cfg["batch_size"], where)
    why["epochs"] = f"about {TARGET_STEPS[where]} optimiser steps on ~{n_train} training images ({where})"
    cfg["pretrained"] = None
    why["pretrained"] = (
        "pass --pretrained hub (or a local file) where the machine can download weights, or the run of "
        "`osteon pretrain` on your unlabelled images (check it first with `osteon probe`): it helps"
    )
    return {"config": cfg, "reasons": why, "warnings": warn}


def _detect(fp: dict[str, Any], where: str) -> dict[str, Any]:
    cfg, why, warn = _common(fp, where)
    rel = (fp.get("boxes") or {}).get("relative_side", {}).get("p10", 0.05)
    size = _round32(24 / max(rel, 1e-3), 512, 1024 if where == "gpu" else 640)
    cfg["image_size"] = size
    why["image_size"] = f"the smallest boxes (10th percentile) are {rel:.1%} of the image side: ≥ 24 px at {size} px"
    cfg["model"] = "centernet"
    why["model"] = (
        "Osteon's default detector: one stride-4 heat map on a light timm encoder, trained on crops of half the "
        "input centred on findings (BENCHMARKS.md §4); see docs/decisions.md"
    )
    cfg["batch_size"] = 8
    n_train = int((fp.get("annotations") or {}).get("images_with_boxes", fp["images"]) * 0.7) or int(fp["images"] * 0.7)
    cfg["epochs"] = _epochs(n_train, cfg["batch_size"], where)
    why["epochs"] = f"about {TARGET_STEPS[where]} optimiser steps on ~{n_train} training images ({where})"
    return {"config": cfg, "reasons": why, "warnings": warn}


def _segment(fp: dict[str, Any], where: str) -> dict[str, Any]:
    cfg, why, warn = _common(fp, where)
    short = fp.get("image_sample", {}).get("short_side_median", 256)
    size = _round32(short, 128, 512 if where == "gpu" else 256)
    cfg["image_size"] = size
    why["image_size"] = f"the images' short side is {short} px: {size} px keeps thin structures (capped for {where})"
    if size > 256:
        cfg["patch_size"] = 256
        why["patch_size"] = "train on 256 px patches of the full-size image (sliding windows at inference)"
    fg = ((fp.get("masks") or {}).get("foreground_fraction") or {}).get("median")
    cfg["loss"] = "dice_focal" if fg is not None and fg < 0.02 else "dice_ce"
    why["loss"] = (
        f"the foreground is small (median {fg:.1%} of the image): Dice + focal loss"
        if cfg["loss"] == "dice_focal"
        else "Dice + cross-entropy, nnU-Net's default"
    )
    rel = ((fp.get("boxes") or {}).get("relative_side") or {}).get("median")
    if rel is not None and rel * cfg.get("patch_size", size) < SMALL_OBJECT_PX:
        warn.append(
            f"the annotated structures are small (median side {rel:.1%} of the image, about {rel * size:.0f} px at "
            f"{size} px): a segmenter trained briefly may predict empty masks everywhere and still score a high "
            "Dice on the images without any (check dice_positive); train longer, at a larger --image-size with "
            "--patch-size, or use the detect strategy"
        )
    cfg["model"] = "unet"
    cfg["encoder"] = "resnet34" if where == "gpu" else "resnet18"
    why["model"] = "a U-Net with a ResNet encoder (segmentation_models_pytorch)"
    cfg["batch_size"] = 8 if where == "gpu" else 4
    n_train = int(fp["images"] * 0.7)
    cfg["epochs"] = _epochs(n_train, cfg["batch_size"], where)
    why["epochs"] = f"about {TARGET_STEPS[where]} optimiser steps on ~{n_train} training images ({where})"
    return {"config": cfg, "reasons": why, "warnings": warn}


def strategies(fp: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Every strategy the annotations allow, each ``{config, reasons, warnings}``."""
    out: dict[str, dict[str, Any]] = {}
    annotations = fp.get("annotations", {})
    labels = fp.get("labels") or {}
    if annotations.get("masks") or annotations.get("polygons"):
        out["segment"] = _segment(fp, where)
    if annotations.get("boxes"):
        out["detect"] = _detect(fp, where)
    if labels.get("n_classes", 0) >= 2:
        if labels.get("consecutive_whole_numbers"):
            out["grade"] = _classify_like(fp, where, ordinal=True)
        out["classify"] = _classify_like(fp, where)
    if fp.get("target"):
        out["regress"] = _classify_like(fp, where, classes=False)
        out["regress"]["config"]["loss"] = "l1"
        out["regress"]["reasons"]["loss"] = "L1: the mean absolute error, in the target's units, is what is reported"
    for task, plan in out.items():
        plan["config"] = {"task": task, **plan["config"]}
    return out


def make_plan(
    data: str | Path, *, format: str | None = None, sample: int = 48, modality: str | None = None, **options: Any
) -> dict[str, Any]:
    """Fingerprint ``data`` and plan every strategy it allows (the content of ``plan.yaml``).

    ``modality`` (DICOM's code: ``CR``, ``DX``, ``US``, ``MR``, ``CT``) states the modality when the files do not
    (PNG and JPEG carry none); it changes the augmentation (ultrasound: smaller rotations).

    Raises:
        ConfigError: the data allow no strategy (no labels, targets, boxes or masks).
    """
    from osteon.data.adapters import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_dataset(data, format=format, **options)
    fp = fingerprint(manifest, sample=sample)
    if modality:
        fp["image_sample"]["modality"] = {modality.upper(): fp["image_sample"].get("read", 0)}
        fp["modality_given"] = modality.upper()
    host = machine()
    plans = strategies(fp, host["accelerator"])
    if not plans:
        raise ConfigError(
            f"{data}: no labels, numeric target, boxes, polygons or masks found, so there is nothing to learn. "
            "Fix: add a label/target column or annotations (see `osteon data summary`)."
        )
    recommended = next(t for t in PREFERENCE if t in plans)
    dataset = {"path": str(Path(data).resolve()), "format": format, **{k: v for k, v in options.items() if v}}
    for plan in plans.values():
        plan["config"] = {
            **plan["config"],
            "data": dataset["path"],
            **({"format": format} if format else {}),
            **options,
        }
    return {
        "osteon_plan": 1,
        "dataset": dataset,
        "machine": host,
        "recommended": recommended,
        "why_recommended": (
            f"{recommended} uses the richest annotation present (order: {', '.join(PREFERENCE)}); the other "
            "strategies below are as valid for other questions"
        ),
        "strategies": plans,
        "fingerprint": fp,
    }


def write_plan(plan: dict[str, Any], path: str | Path) -> Path:
    """Write ``plan.yaml`` (refuses to overwrite)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; choose another --out or delete it.")
    path.write_text(yaml.safe_dump(plan, sort_keys=False, allow_unicode=True))
    return path


def yaml_values(path: str | Path) -> dict[str, Any]:
    """The option: value mapping of a YAML training config (to lay over a plan).

    Raises:
        ConfigError: missing file, invalid YAML, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, got {type(values).__name__}.")
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def plan_options(path: str | Path, *, task: str | None = None, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Training options from ``plan.yaml``: the config of ``task`` (default: the recommended one), under ``given``.

    Raises:
        ConfigError: not a plan file, or the plan has no config for ``task``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such plan. Fix: write one with `osteon plan DATA --out {path}`.")
    plan = yaml.safe_load(path.read_text()) or {}
    if not isinstance(plan, dict) or "strategies" not in plan:
        raise ConfigError(f"{path}: not a plan.yaml of `osteon plan` (no 'strategies'). Fix: run `osteon plan DATA`.")
    task = str(task) if task else plan.get("recommended")
    if task not in plan["strategies"]:
        raise ConfigError(
            f"{path}: the plan has no config for task {task!r} (it planned {', '.join(plan['strategies'])}). "
            "Fix: pick one of those with --task, or plan data that have the annotations."
        )
    base = {k: v for k, v in plan["strategies"][task]["config"].items() if v is not None}
    return {**base, **{k: v for k, v in (given or {}).items() if v is not None}}
