"""Where a task's file outputs go: the engine's :class:`~osteon.tasks.base.OutputWriter` for masks.

Tasks hand arrays over and never choose paths; the engine decides the folder (``RUN/outputs_<key>/`` for an
evaluation, ``<out>_outputs/`` beside a ``predict`` CSV), and this writer the file names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Colours of the saved palette PNGs (class k gets PALETTE[k]); the stored values are the class indices.
PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


def save_label_png(path: Path, mask: np.ndarray) -> Path:
    """Write a class-index map as a palette PNG: values are the class indices, colours make it viewable."""
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    pil = PILImage.fromarray(mask.astype(np.uint8), mode="P")
    palette = [c for colour in PALETTE for c in colour]
    palette += [255, 255, 255] * (256 - len(PALETTE))
    pil.putpalette(palette)
    pil.save(path)
    return path


class MaskFileWriter:
    """Saves masks under ``folder/<kind>/<stem>.png`` (multi-label: ``<stem>_<k>.png`` per channel).

    Implements :class:`osteon.tasks.base.OutputWriter`.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def save_mask(self, kind: str, stem: str, mask: np.ndarray) -> str:
        base = self.folder / kind / stem
        if mask.ndim == 2:
            return str(save_label_png(base.with_suffix(".png"), mask))
        paths = [str(save_label_png(base.parent / f"{base.name}_{k + 1}.png", m)) for k, m in enumerate(mask)]
        return "|".join(paths)
