"""Synthetic radiograph-like phantoms of a knee joint: a dataset that every task can learn from in seconds.

Design (what each label is tied to, so that a model can learn it and a test can check it):

* **Anatomy.** A vertical femur above a tibia, both widening from a shaft into condyles towards the
  joint. Soft tissue is a blurred band around the bones on a dark (air) background. Bone = bright
  cortex (rim) around a darker medulla with trabecular texture (band-passed noise). The whole
  picture is rotated by up to ±8°, shifted a little, mirrored for right knees, blurred (the focal
  spot), given a heel-effect gradient, a random gain/offset and Gaussian noise.
* **Kellgren–Lawrence grade** (``kl_grade`` 0–4): the joint space (gap between the bone ends,
  narrowest at the centre) narrows with the grade — about 10.5, 8.5, 6.5, 4.5, 2.5 % of the image
  size, ±6 % — osteophytes (bright spurs at the joint margins) grow from grade 2 and subchondral
  sclerosis (a bright band under the joint) appears from grade 3. ``target`` is the drawn
  joint-space width in pixels, a regression target that the grade predicts.
* **Fracture** (``fractured`` 1/0, ``label`` ``"fractured"``/``"normal"``): a dark line (about 4 %
  of the image size thick) across the shaft of the femur or tibia at a random angle (±35°) with a
  halo; its pixels inside the bone are the ``mask`` and their bounding box is the ``boxes`` entry.
* **Patients.** Two knees (L, R) per patient share age, sex, bone size and soft tissue, and their
  grades differ by at most one; the grade rises with age. So a split that ignores patients leaks.

Images are 16-bit grayscale PNGs (values over the whole 0..65535 range) so that the 16-bit read path
is exercised; masks are 8-bit PNG label maps (0 background, 1 fracture).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image as PILImage
from scipy.ndimage import gaussian_filter

from osteon.data.manifest import Manifest
from osteon.errors import ConfigError

TASKS = ("fracture", "kl_grade")
#: Joint-space width per KL grade, as a fraction of the image size.
JOINT_SPACE = (0.105, 0.085, 0.065, 0.045, 0.025)
FRACTURE_LABEL = "fracture"


def joint_space_width(rng: np.random.Generator, *, size: int, kl_grade: int) -> float:
    """Draw the joint-space width in pixels for a grade (``JOINT_SPACE[grade]·size``, ±6 % noise)."""
    if kl_grade not in range(5):
        raise ConfigError(f"kl_grade must be 0..4 or None, got {kl_grade!r}.")
    return float(max(1.0, JOINT_SPACE[kl_grade] * size * (1 + 0.06 * rng.standard_normal())))


def make_phantom(
    rng: np.random.Generator,
    *,
    size: int,
    fracture: bool,
    kl_grade: int | None,
    joint_space: float | None = None,
    bone_scale: float = 1.0,
    mirror: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, object]]]:
    """Draw one knee (or, with ``kl_grade=None``, long-bone shaft) radiograph.

    Args:
        rng: Source of all randomness (the same generator state gives the same image).
        size: Height and width in pixels (≥ 32).
        fracture: Draw a fracture line across a shaft.
        kl_grade: 0..4 for a knee joint whose joint space narrows with the grade; ``None`` for a
            single bone shaft with no joint.
        joint_space: Joint-space width in pixels (default: :func:`joint_space_width`).
        bone_scale: Bone width factor (a patient trait, ~0.9–1.1).
        mirror: Flip left-right (right knees).

    Returns:
        ``(image, mask, boxes)``: ``image`` ``uint16 (size, size)``, brighter = denser;
        ``mask`` ``uint8 (size, size)``, 1 on the fracture line inside bone, else 0; ``boxes`` a list
        with one ``{"xyxy": [x1, y1, x2, y2], "label": "fracture"}`` (pixels, x right / y down,
        inclusive-exclusive) for a fracture, else empty.
    """
    if size < 32:
        raise ConfigError(f"size must be ≥ 32 pixels, got {size}.")
    s = float(size)
    gap = 0.0
    if kl_grade is not None:
        gap = joint_space if joint_space is not None else joint_space_width(rng, size=size, kl_grade=kl_grade)
    angle = math.radians(rng.uniform(-8, 8))
    cy, cx = s / 2 + rng.uniform(-0.04, 0.04) * s, s / 2 + rng.uniform(-0.04, 0.04) * s
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    u = (yy - cy) * math.cos(angle) + (xx - cx) * math.sin(angle)  # along the bones (down)
    v = -(yy - cy) * math.sin(angle) + (xx - cx) * math.cos(angle)  # across (right)

    shaft, end = 0.10 * s * bone_scale, 0.23 * s * bone_scale
    cortex = 0.028 * s * bone_scale
    if kl_grade is None:  # one bone along the whole image
        depth = np.full_like(u, s)  # distance from the bone end: far everywhere
        bone_id = np.ones_like(u, dtype=np.int8)
    else:
        half_gap = gap / 2 + 0.9 * (v / end) ** 2 * 0.02 * s  # gap widens away from the centre
        depth = np.abs(u) - half_gap
        bone_id = np.where(u < 0, 1, 2).astype(np.int8)  # 1 femur (top), 2 tibia (bottom)
    half_width = shaft + (end - shaft) * np.exp(-np.clip(depth, 0, None) / (0.16 * s))
    inside = (depth >= 0) & (np.abs(v) <= half_width)
    edge_distance = np.minimum(half_width - np.abs(v), depth if kl_grade is not None else np.inf)

    soft_half = (0.36 + rng.uniform(-0.04, 0.04)) * s
    picture = 0.04 + 0.22 / (1 + np.exp((np.abs(v) - soft_half) / (0.02 * s)))  # air → soft tissue
    texture = gaussian_filter(rng.standard_normal((size, size)), 1.2) - gaussian_filter(
        rng.standard_normal((size, size)), 3.0
    )
    texture /= texture.std() + 1e-9
    medulla = 0.52 + 0.05 * texture
    cortex_band = np.clip(1 - edge_distance / cortex, 0, 1)
    bone = medulla + (0.88 - medulla) * cortex_band
    if kl_grade is not None and kl_grade >= 3:  # subchondral sclerosis
        bone += 0.06 * (kl_grade - 2) * np.exp(-np.clip(depth, 0, None) / (0.03 * s))
    picture = np.where(inside, bone, picture)
    if kl_grade is not None and kl_grade >= 2:  # osteophytes at the four joint margins
        radius = 0.012 * s * (kl_grade - 1)
        for side in (-1, 1):
            for direction in (-1, 1):
                du = direction * (gap / 2 + 0.02 * s) - u
                dv = side * (end + 0.2 * radius) - v
                picture = np.maximum(picture, 0.8 * np.exp(-(du**2 + dv**2) / (2 * radius**2)) * (depth > -1))

    mask = np.zeros((size, size), dtype=np.uint8)
    if fracture:
        which = 1 if kl_grade is None else int(rng.integers(1, 3))
        lo, hi = (0.1 * s, 0.9 * s) if kl_grade is None else (0.2 * s, 0.34 * s)
        along = rng.uniform(lo, hi) - (0.5 * s if kl_grade is None else 0.0)
        centre_u = along if kl_grade is None else (1 if which == 2 else -1) * (gap / 2 + along)
        tilt = math.radians(rng.uniform(-35, 35))
        distance = np.abs((u - centre_u) * math.cos(tilt) - v * math.sin(tilt))
        thickness = max(2.0, 0.04 * s)
        on_bone = inside & (bone_id == which)
        line = on_bone & (distance <= thickness / 2)
        halo = on_bone & (distance <= thickness * 1.5)
        picture = np.where(halo, picture - 0.15, picture)
        picture = np.where(line, 0.14, picture)
        mask[line] = 1

    picture = gaussian_filter(picture, 0.6)
    picture += 0.06 * (yy / s - 0.5) * rng.choice([-1, 1])  # heel effect
    picture = picture * rng.uniform(0.85, 1.1) + rng.uniform(0.0, 0.05)
    picture += rng.normal(0, 0.018, picture.shape)
    image = np.round(np.clip(picture, 0, 1) * 65535).astype(np.uint16)
    if mirror:
        image, mask = image[:, ::-1].copy(), mask[:, ::-1].copy()
    boxes: list[dict[str, object]] = []
    if mask.any():
        rows, cols = np.nonzero(mask)
        xyxy = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
        boxes.append({"xyxy": xyxy, "label": FRACTURE_LABEL})
    return image, mask, boxes


def make_phantom_dataset(
    out: str | Path,
    *,
    images: int = 120,
    size: int = 128,
    seed: int = 0,
    task: str = "fracture",
    overwrite: bool = False,
) -> Manifest:
    """Write a phantom dataset (PNGs + ``manifest.csv``) into ``out`` and return its Manifest.

    Layout: ``out/images/P0001_L.png`` (16-bit), ``out/masks/P0001_L.png`` (8-bit, fractured images
    only; normal images have no mask entry, i.e. all background), ``out/manifest.csv``.

    Args:
        out: Folder to write into (created).
        images: Number of images (two knees per patient; an odd number leaves one patient with one).
        size: Image height and width in pixels.
        seed: The same seed, count and size give byte-identical files.
        task: What ``label`` holds: ``"fracture"`` (``"fractured"``/``"normal"``, half each) or
            ``"kl_grade"`` (``"0"``..``"4"``).
        overwrite: Replace an existing ``out/manifest.csv``.

    Returns:
        Manifest with columns ``image, patient_id, laterality, label, fractured, kl_grade, target,
        age, sex, body_part, view, boxes, mask, width, height, split`` (split: patient-grouped,
        stratified by ``label``, 70/15/15, made with :func:`osteon.data.splits.make_splits`; empty
        when there are too few patients).

    Raises:
        ConfigError: unknown task, ``images`` < 1 or ``size`` < 32.
        FileExistsError: ``out/manifest.csv`` exists and ``overwrite`` is False.
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}.")
    if images < 1:
        raise ConfigError(f"images must be ≥ 1, got {images}.")
    out = Path(out)
    manifest_path = out / "manifest.csv"
    if manifest_path.exists() and not overwrite:
        raise FileExistsError(f"{manifest_path} exists; pass overwrite=True (CLI: --overwrite) or another folder.")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fractured = rng.permutation(np.arange(images) % 2 == 0)
    rows: list[dict[str, object]] = []
    for i in range(images):
        patient, side = divmod(i, 2)
        if side == 0:
            age = float(np.round(rng.uniform(40, 85), 1))
            sex = str(rng.choice(["F", "M"]))
            scale = rng.uniform(0.9, 1.1) * (1.05 if sex == "M" else 0.95)
            base = int(np.clip(np.round((age - 40) / 45 * 4 + rng.normal(0, 0.8)), 0, 4))
        grade = int(np.clip(base + rng.choice([-1, 0, 0, 1]), 0, 4))
        width = joint_space_width(rng, size=size, kl_grade=grade)
        image, mask, boxes = make_phantom(
            rng,
            size=size,
            fracture=bool(fractured[i]),
            kl_grade=grade,
            joint_space=width,
            bone_scale=scale,
            mirror=side == 1,
        )
        stem = f"P{patient + 1:04d}_{'LR'[side]}"
        PILImage.fromarray(image).save(out / "images" / f"{stem}.png")
        mask_path = pd.NA
        if fractured[i]:
            (out / "masks").mkdir(exist_ok=True)
            PILImage.fromarray(mask).save(out / "masks" / f"{stem}.png")
            mask_path = f"masks/{stem}.png"
        rows.append(
            {
                "image": f"images/{stem}.png",
                "patient_id": f"P{patient + 1:04d}",
                "laterality": "LR"[side],
                "label": ("fractured" if fractured[i] else "normal") if task == "fracture" else str(grade),
                "fractured": int(fractured[i]),
                "kl_grade": str(grade),
                "target": round(width, 3),
                "age": age,
                "sex": sex,
                "body_part": "knee",
                "view": "AP",
                "boxes": json.dumps(boxes, separators=(",", ":")),
                "mask": mask_path,
                "width": size,
                "height": size,
            }
        )
    frame = pd.DataFrame(rows)
    frame["kl_grade"] = frame["kl_grade"].astype("string")
    manifest = Manifest(frame, root=out, name=f"phantom_{task}")
    manifest = manifest.with_columns(split=_splits(manifest, seed=seed))
    manifest.save(manifest_path, overwrite=True)
    return manifest


def _splits(manifest: Manifest, *, seed: int) -> pd.Series:
    from osteon.data.splits import SplitWarning, make_splits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SplitWarning)
            return make_splits(manifest, seed=seed, groups=manifest.frame["patient_id"])
    except ConfigError:  # too few patients for three splits
        return pd.Series(pd.NA, index=manifest.frame.index, dtype="string")
