"""Synthetic radiograph-like spine phantoms with known landmarks and a known Cobb angle.

Each image shows three vertebral bodies (bright rounded blocks with a cortical rim and trabecular texture)
stacked in soft tissue, the upper one tilted by ``θ_upper`` and the lower one by ``θ_lower``. The landmarks are
the corners of the upper endplate of the upper vertebra and of the lower endplate of the lower vertebra (the
points a reader clicks for a Cobb angle):

``upper_endplate_left``, ``upper_endplate_right``, ``lower_endplate_left``, ``lower_endplate_right``

so the Cobb angle (``cobb_angle`` column) is ``|θ_upper − θ_lower|`` exactly, and
:func:`osteon.metrics.measurements.measure` recovers it from the true points. Images are 8-bit PNGs with a
pixel spacing (``spacing_row``/``spacing_col`` columns, mm) so that errors are reported in mm. About one
image in ten has ``lower_endplate_right`` left unannotated (missing points are allowed).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image as PILImage
from PIL import ImageDraw
from scipy.ndimage import gaussian_filter

from osteon.data.keypoints import format_keypoints
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError

SPINE_POINTS = ("upper_endplate_left", "upper_endplate_right", "lower_endplate_left", "lower_endplate_right")


def _corners(cx: float, cy: float, w: float, h: float, theta: float) -> np.ndarray:
    """Corners (top-left, top-right, bottom-right, bottom-left) of a ``w × h`` block rotated by ``theta`` rad."""
    c, s = math.cos(theta), math.sin(theta)
    local = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rot = np.array([[c, -s], [s, c]])
    return local @ rot.T + np.array([cx, cy])


def make_spine_phantom(rng: np.random.Generator, *, size: int, cobb_max: float = 30.0) -> tuple[np.ndarray, dict]:
    """One ``(size, size)`` uint8 image and its truth: ``points`` ``(4, 2)`` and ``cobb_angle`` in degrees."""
    scale = 4  # drawn at 4x and downsampled: anti-aliased edges, sub-pixel landmarks
    big = size * scale
    tissue = PILImage.new("F", (big, big), 0.0)
    draw = ImageDraw.Draw(tissue)
    width = big * rng.uniform(0.28, 0.36)
    height = big * rng.uniform(0.15, 0.18)
    gap = big * rng.uniform(0.05, 0.07)
    cx = big / 2 + rng.uniform(-0.06, 0.06) * big
    cy = big / 2 + rng.uniform(-0.04, 0.04) * big
    theta_up = math.radians(rng.uniform(-cobb_max / 2, cobb_max / 2))
    theta_low = math.radians(rng.uniform(-cobb_max / 2, cobb_max / 2))
    thetas = (theta_up, (theta_up + theta_low) / 2, theta_low)
    centres = [(cx + (i - 1) * rng.uniform(-0.02, 0.02) * big, cy + (i - 1) * (height + gap)) for i in range(3)]
    blocks = [_corners(x, y, width, height, t) for (x, y), t in zip(centres, thetas, strict=True)]
    for corners in blocks:  # cortex (rim) brighter than the body
        draw.polygon([tuple(p) for p in corners], fill=1.0)
    inner = PILImage.new("F", (big, big), 0.0)
    inner_draw = ImageDraw.Draw(inner)
    for (x, y), t in zip(centres, thetas, strict=True):
        shrink = big * 0.012
        inner_draw.polygon([tuple(p) for p in _corners(x, y, width - 2 * shrink, height - 2 * shrink, t)], fill=1.0)
    bone = np.asarray(tissue, dtype=np.float32)
    body = np.asarray(inner, dtype=np.float32)
    bone_s = bone.reshape(size, scale, size, scale).mean(axis=(1, 3))
    body_s = body.reshape(size, scale, size, scale).mean(axis=(1, 3))
    texture = gaussian_filter(rng.standard_normal((size, size)), 1.0)
    yy = np.linspace(-1, 1, size)[:, None]
    xx = np.linspace(-1, 1, size)[None, :]
    soft = 0.25 + 0.15 * np.exp(-(xx**2) / 0.5) + 0.05 * yy
    picture = soft + 0.55 * bone_s - 0.15 * body_s + 0.04 * texture * body_s
    picture = gaussian_filter(picture, 0.6) + rng.normal(0, 0.025, (size, size))
    picture = np.clip(picture * rng.uniform(0.9, 1.1) + rng.uniform(-0.03, 0.03), 0, 1)
    # Pillow draws pixel index X at its centre, i.e. at X + 0.5 in continuous coordinates where pixel 0 spans
    # [0, 1); the 4x4 mean then maps big coordinate u to u / 4. Landmarks use these continuous coordinates.
    points = (np.array([blocks[0][0], blocks[0][1], blocks[2][3], blocks[2][2]]) + 0.5) / scale
    truth = {"points": points, "cobb_angle": abs(math.degrees(theta_up - theta_low))}
    return (picture * 255).round().astype(np.uint8), truth


def make_landmark_dataset(
    out: str | Path,
    *,
    images: int = 96,
    size: int = 96,
    seed: int = 0,
    spacing_mm: float = 0.5,
    missing_every: int = 10,
    overwrite: bool = False,
) -> Manifest:
    """Write spine phantoms with landmarks to ``out`` (``images/*.png`` and ``manifest.csv``).

    Columns: ``image``, ``patient_id`` (one image per patient), ``split`` (70/15/15), ``keypoints`` (JSON,
    original pixels), ``cobb_angle`` (the drawn angle, degrees), ``spacing_row``/``spacing_col`` (mm).

    Raises:
        ConfigError: ``out`` already holds a manifest (unless ``overwrite``), or the size is too small.
    """
    out = Path(out)
    if size < 32:
        raise ConfigError(f"size={size} is too small for landmark phantoms; use at least 32.")
    if (out / "manifest.csv").exists() and not overwrite:
        raise ConfigError(f"{out / 'manifest.csv'} exists. Fix: choose another --out or pass --overwrite.")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(images):
        picture, truth = make_spine_phantom(rng, size=size)
        name = f"images/spine_{i:04d}.png"
        PILImage.fromarray(picture).save(out / name)
        points = truth["points"].copy()
        if missing_every and i % missing_every == missing_every - 1:
            points[3] = np.nan
        fraction = i / max(1, images)
        split = "train" if fraction < 0.7 else ("val" if fraction < 0.85 else "test")
        rows.append(
            {
                "image": name,
                "patient_id": f"S{i:04d}",
                "split": split,
                "keypoints": format_keypoints(SPINE_POINTS, points, decimals=3),
                "cobb_angle": round(truth["cobb_angle"], 4),
                "spacing_row": spacing_mm,
                "spacing_col": spacing_mm,
            }
        )
    frame = pd.DataFrame(rows)
    manifest = Manifest(frame, root=out, name=out.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest.save(out / "manifest.csv", overwrite=overwrite)
    return manifest
