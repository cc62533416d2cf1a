"""Box overlays: true boxes (green) and predicted boxes (orange, with scores) drawn on a sample of images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image as PILImage
from PIL import ImageDraw

from osteon.data.boxes import box_records
from osteon.errors import DatasetFormatError, OsteonError

TRUE_COLOUR = (40, 220, 90)
PRED_COLOUR = (255, 150, 20)
MAX_SIDE = 768


def draw_box_overlays(
    frame: pd.DataFrame,
    out_dir: Path,
    *,
    n: int = 8,
    min_score: float = 0.3,
    max_boxes: int = 5,
    seed: int = 0,
) -> list[Path]:
    """Draw ``n`` images of a detection predictions table into ``out_dir`` (PNG, longer side ≤ 768 px).

    Args:
        frame: Rows with ``image`` (absolute path), ``pred_boxes`` (JSON, original pixels, with ``score``)
            and optionally ``truth`` (JSON true boxes).
        out_dir: Folder to write into (created).
        n: Images to draw; images with true boxes come first, in a seeded random order.
        min_score: Predicted boxes below this score are not drawn (the top one always is).
        max_boxes: At most this many predicted boxes per image.
        seed: Order of the sample.

    Returns:
        The PNG files written (unreadable images are skipped).
    """
    from osteon.io import read_image, to_grayscale_float

    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    truth = [_records(v) for v in frame["truth"]] if "truth" in frame else [[] for _ in range(len(frame))]
    has_truth = np.array([len(t) > 0 for t in truth], dtype=bool)
    order = np.concatenate([order[has_truth[order]], order[~has_truth[order]]])
    written: list[Path] = []
    for i in order[:n]:
        row = frame.iloc[int(i)]
        try:
            image = read_image(row["image"])
        except OsteonError:
            continue
        if image.is_volume:
            continue
        gray = (to_grayscale_float(image) * 255).round().astype(np.uint8)
        canvas = PILImage.fromarray(gray).convert("RGB")
        scale = min(1.0, MAX_SIDE / max(canvas.size))
        if scale < 1:
            canvas = canvas.resize((round(canvas.width * scale), round(canvas.height * scale)))
        draw = ImageDraw.Draw(canvas)
        width = max(1, round(2 * max(canvas.size) / 512))
        for box in truth[int(i)]:
            draw.rectangle([v * scale for v in box["xyxy"]], outline=TRUE_COLOUR, width=width)
        predicted = _records(row.get("pred_boxes"), scored=True)
        for k, box in enumerate(predicted[:max_boxes]):
            if k > 0 and box["score"] < min_score:
                break
            xyxy = [v * scale for v in box["xyxy"]]
            draw.rectangle(xyxy, outline=PRED_COLOUR, width=width)
            draw.text((xyxy[0] + 2, max(0, xyxy[1] - 11)), f"{box['label']} {box['score']:.2f}", fill=PRED_COLOUR)
        path = out_dir / f"{Path(str(row['image'])).stem}_boxes.png"
        canvas.save(path)
        written.append(path)
    return written


def _records(value: Any, *, scored: bool = False) -> list[dict[str, Any]]:
    """Box records of a cell; a malformed cell draws nothing (``osteon data check`` reports it)."""
    try:
        return box_records(value, scored=scored)
    except DatasetFormatError:
        return []
