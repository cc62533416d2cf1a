"""Mask overlay figures: predicted masks (filled) and ground truth (outlined) over a sample of radiographs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["overlay_figure", "pick_cases", "write_overlay_figure"]

_COLOURS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4"]


def pick_cases(frame: pd.DataFrame, n: int = 8, *, seed: int = 0) -> pd.DataFrame:
    """A reproducible sample for review: the worst and best images by Dice, then random others.

    Rows without a saved mask (``mask_file``) or with an ``error`` are skipped. Without Dice columns the
    sample is random.
    """
    usable = frame
    if "error" in usable:
        usable = usable[usable["error"].isna() | (usable["error"] == "")]
    if "mask_file" not in usable:
        return usable.iloc[:0]
    usable = usable[usable["mask_file"].notna() & (usable["mask_file"] != "")]
    dice_columns = [c for c in usable.columns if c.startswith("dice_")]
    if dice_columns and len(usable) > n:
        dice = usable[dice_columns].astype(float).mean(axis=1)
        positive = usable["truth"].astype(str) != "background" if "truth" in usable else dice.notna()
        ranked = dice[positive].sort_values()
        chosen = list(ranked.index[: n // 2]) + list(ranked.index[::-1][: n // 4])
        rest = usable.index.difference(chosen)
        rng = np.random.default_rng(seed)
        extra: list = list(rng.choice(rest, size=min(len(rest), n - len(chosen)), replace=False)) if len(rest) else []
        return usable.loc[list(dict.fromkeys([*chosen, *extra]))[:n]]
    return usable.iloc[:n]


def overlay_figure(frame: pd.DataFrame, out: str | Path, *, n: int = 8, title: str = "") -> Path:
    """Draw ``n`` cases of a predictions table (``image``, ``mask_file``, optional ``truth_file``) into ``out``.

    Each panel shows the radiograph in gray, the predicted classes filled (semi-transparent) and the truth
    outlined in the same colour, with the image's Dice in the title when known.

    Returns:
        The written PNG path.
    """
    from osteon.data.masks import read_label_map
    from osteon.io import read_image, to_grayscale_float

    cases = pick_cases(frame, n)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = max(1, min(4, len(cases)))
    rows = max(1, int(np.ceil(len(cases) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, case) in zip(axes.ravel(), cases.iterrows(), strict=False):
        image = to_grayscale_float(read_image(case["image"]))
        ax.imshow(image, cmap="gray", interpolation="lanczos")
        pred = _load(case.get("mask_file"), read_label_map)
        truth = _load(case.get("truth_file"), read_label_map)
        for k in range(1, 1 + max(_max(pred), _max(truth))):
            colour = _COLOURS[(k - 1) % len(_COLOURS)]
            if pred is not None and (pred == k).any():
                layer = np.zeros((*pred.shape, 4))
                layer[pred == k] = matplotlib.colors.to_rgba(colour, 0.45)
                ax.imshow(layer, interpolation="nearest")
            if truth is not None and (truth == k).any():
                ax.contour(truth == k, levels=[0.5], colors=[colour], linewidths=1.2)
        dice = [case[c] for c in case.index if str(c).startswith("dice_") and pd.notna(case[c])]
        label = Path(str(case["image"])).name
        ax.set_title(f"{label}\nDice {np.mean(dice):.2f}" if dice else label, fontsize=8)
    fig.suptitle(title or "prediction (filled) vs truth (outline)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _load(path: object, reader: object) -> np.ndarray | None:
    if not isinstance(path, str) or not path or "|" in path:  # multi-label masks are several files: skip
        return None
    return reader(path)  # type: ignore[operator]


def _max(mask: np.ndarray | None) -> int:
    return int(mask.max()) if mask is not None and mask.size else 0


def write_overlay_figure(run: str | Path, result: dict) -> Path | None:
    """``RUN/figures/<key>_overlays.png`` from an evaluation entry of ``metrics.json`` (segment runs).

    Returns ``None`` when the predictions have no saved masks (nothing to draw).
    """
    from osteon.engine.rundir import RunDir
    from osteon.report.rundata import predictions_key

    rundir = RunDir(Path(run))
    key = predictions_key(result, str(result.get("split", "test")))
    frame = rundir.read_predictions(key)
    if "mask_file" not in frame or frame["mask_file"].isna().all():
        return None
    title = f"{key}: prediction (filled) vs truth (outline)"
    return overlay_figure(frame, rundir.figures / f"{key}_overlays.png", title=title)
