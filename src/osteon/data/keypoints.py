"""Landmark annotations in a Manifest column: ``[{"name": "hip_centre", "xy": [x, y]}, ...]``.

Coordinates are in the ORIGINAL image's pixels (x right, y down, pixel centres at integers + 0.5 are not
assumed: a point is where the annotator clicked). Any number of named points; a point that is not annotated is
left out of the list (or given ``"xy": null``). An empty cell means the image is not annotated at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from osteon.errors import ConfigError

KEYPOINT_COLUMN = "keypoints"


def parse_keypoints(cell: Any, *, where: str = "") -> dict[str, tuple[float, float] | None] | None:
    """``{name: (x, y) or None}`` of one cell, or ``None`` for an empty cell (not annotated).

    Raises:
        ConfigError: the cell is not the JSON list described in the module docstring.
    """
    if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell is pd.NA:
        return None
    text = str(cell).strip()
    if not text:
        return None
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}keypoints cell {text[:60]!r} is not JSON ({exc.msg}). "
            'Fix: write [{"name": "hip_centre", "xy": [x, y]}, ...] in original pixels.'
        ) from None
    if not isinstance(items, list):
        raise ConfigError(f"{where}keypoints cell must be a JSON list of {{name, xy}} objects, got {text[:60]!r}.")
    out: dict[str, tuple[float, float] | None] = {}
    for item in items:
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f'{where}keypoint {item!r} needs a "name" and an "xy": [x, y].')
        xy = item.get("xy")
        if xy is None:
            out[str(item["name"])] = None
            continue
        if not (isinstance(xy, list | tuple) and len(xy) == 2):
            raise ConfigError(f"{where}keypoint {item['name']!r} has xy={xy!r}; expected [x, y] in pixels.")
        x, y = float(xy[0]), float(xy[1])
        out[str(item["name"])] = (x, y) if np.isfinite(x) and np.isfinite(y) else None
    return out


def format_keypoints(names: Sequence[str], points: np.ndarray, *, decimals: int = 2) -> str:
    """The JSON cell of ``(K, 2)`` points (``nan`` rows are written with ``"xy": null``)."""
    items = []
    for name, (x, y) in zip(names, np.asarray(points, dtype=float), strict=True):
        xy = [round(float(x), decimals), round(float(y), decimals)] if np.isfinite(x) and np.isfinite(y) else None
        items.append({"name": str(name), "xy": xy})
    return json.dumps(items)


def point_names(frame: pd.DataFrame, column: str) -> list[str]:
    """Every point name in ``column``, in order of first appearance."""
    names: dict[str, None] = {}
    for i, cell in enumerate(frame[column]):
        parsed = parse_keypoints(cell, where=f"row {i}: ")
        for name in parsed or {}:
            names.setdefault(name, None)
    return list(names)


def keypoint_array(cells: Sequence[Any], names: Sequence[str]) -> np.ndarray:
    """``(N, K, 2)`` float points in the order of ``names``; ``nan`` where a point (or the row) is missing."""
    out = np.full((len(cells), len(names), 2), np.nan, dtype=np.float64)
    index = {n: k for k, n in enumerate(names)}
    for i, cell in enumerate(cells):
        for name, xy in (parse_keypoints(cell, where=f"row {i}: ") or {}).items():
            if xy is not None and name in index:
                out[i, index[name]] = xy
    return out
