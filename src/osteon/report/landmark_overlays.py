"""Landmark figures: reference (circles) and predicted (crosses) points over a sample of images.

Heat-map overlays (the keypoints task's CAM equivalent) are drawn by :mod:`osteon.explain.heatmaps`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from osteon.data.keypoints import parse_keypoints

__all__ = ["landmark_figure"]

_COLOURS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6"]


def _plane(path: str) -> np.ndarray:
    from osteon.io import read_image, to_grayscale_float

    return to_grayscale_float(read_image(path))


def landmark_figure(frame: pd.DataFrame, out: str | Path, *, n: int = 8, title: str = "") -> Path:
    """The worst and best images by mean radial error (``radial_error_px``), truth ○ vs prediction ×.

    Args:
        frame: A keypoints predictions table (``image`` absolute or resolvable, ``truth``/``prediction`` JSON).
        out: The PNG to write.
    """
    usable = frame[frame["truth"].notna()] if "truth" in frame else frame
    if "error" in usable:
        usable = usable[usable["error"].isna() | (usable["error"] == "")]
    if "radial_error_px" in usable and len(usable) > n:
        ranked = usable.sort_values("radial_error_px", ascending=False)
        cases = pd.concat([ranked.head(n - n // 2), ranked.tail(n // 2)])
    else:
        cases = usable.head(n)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = max(1, min(4, len(cases)))
    rows = max(1, int(np.ceil(len(cases) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, case) in zip(axes.ravel(), cases.iterrows(), strict=False):
        ax.imshow(_plane(str(case["image"])), cmap="gray", interpolation="lanczos")
        truth = parse_keypoints(case.get("truth")) or {}
        pred = parse_keypoints(case.get("prediction")) or {}
        for k, name in enumerate(dict.fromkeys([*truth, *pred])):
            colour = _COLOURS[k % len(_COLOURS)]
            if truth.get(name) is not None:  # pixel (0, 0) spans [0, 1)²; imshow centres it at 0, so shift -0.5
                x, y = truth[name]  # type: ignore[misc]
                ax.scatter([x - 0.5], [y - 0.5], s=40, facecolors="none", edgecolors=colour, linewidths=1.2)
            if pred.get(name) is not None:
                x, y = pred[name]  # type: ignore[misc]
                ax.scatter([x - 0.5], [y - 0.5], s=30, marker="x", c=colour, linewidths=1.2)
        err = case.get("radial_error_px")
        label = Path(str(case["image"])).name
        ax.set_title(f"{label}\nMRE {float(err):.1f} px" if pd.notna(err) else label, fontsize=8)
    fig.suptitle(title or "reference ○ vs prediction ×", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
