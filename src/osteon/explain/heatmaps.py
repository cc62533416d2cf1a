"""Explaining landmark models: their own heat maps (the CAM equivalent) and Grad-CAM per landmark.

* :func:`landmark_heatmaps`: the spatial softmax of every landmark, mapped back onto the original image and drawn
  over it with the decoded points (what the model itself says about where each landmark is, and how sure).
* The ``keypoints`` CAM adapter: one target per landmark, the landmark's logit at its predicted peak, so that
  ``osteon explain`` / :func:`osteon.explain.explain_image` give a Grad-CAM of what supports each landmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from osteon.errors import ConfigError
from osteon.explain.dense_targets import SegmentationCamAdapter
from osteon.explain.geometry import to_original
from osteon.explain.targets import ALL, CAM_ADAPTERS, CamTarget

if TYPE_CHECKING:
    from osteon.engine.predictor import Predictor

_COLOURS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6"]


@dataclass(frozen=True)
class LandmarkHeatmaps:
    """Heat maps of one image.

    Attributes:
        image: The file.
        names: Landmark names.
        points: ``(K, 2)`` decoded points in original pixels.
        confidence: ``(K,)`` peak mass in [0, 1].
        maps: ``(K, H, W)`` each landmark's map on the original pixel grid, scaled to its own peak (max 1).
        overlay: The PNG written when ``out_dir`` was given.
    """

    image: Path
    names: tuple[str, ...]
    points: np.ndarray
    confidence: np.ndarray
    maps: np.ndarray
    overlay: Path | None = None


def landmark_heatmaps(predictor: Predictor, path: str | Path, *, out_dir: str | Path | None = None) -> LandmarkHeatmaps:
    """The heat maps of a keypoints model on one image, in its original pixels (``out_dir``: write an overlay).

    Raises:
        ConfigError: the model does not predict landmarks.
    """
    from osteon.data.transforms import load_unit_image

    prediction = predictor.predict_image(path)
    heatmaps = getattr(prediction, "heatmaps", None)
    if heatmaps is None:
        raise ConfigError(f"task {predictor.task.name!r} has no landmark heat maps. Fix: use `osteon explain` (CAM).")
    _, geometry = load_unit_image(path, predictor.preprocessing)
    maps = np.stack([to_original(h / max(float(h.max()), 1e-12), geometry, predictor.preprocessing) for h in heatmaps])
    overlay = None
    if out_dir is not None:
        from osteon.io import read_image, to_grayscale_float

        background = to_grayscale_float(read_image(path))
        out = Path(out_dir) / f"{Path(path).stem}_heatmaps.png"
        overlay = heatmap_overlay(background, maps, prediction.points, list(prediction.names), out)
    return LandmarkHeatmaps(Path(path), prediction.names, prediction.points, prediction.confidence, maps, overlay)


def heatmap_overlay(
    image: np.ndarray, heatmaps: np.ndarray, points: np.ndarray, names: list[str], out: str | Path
) -> Path:
    """Every landmark's map (each scaled to its own peak) over the image, with the decoded points (×).

    Args:
        image: ``(H, W)`` grey plane in [0, 1] (original pixels).
        heatmaps: ``(K, H, W)`` maps on the same grid.
        points: ``(K, 2)`` decoded points (original pixels; pixel ``(0, 0)`` spans ``[0, 1)²``).
        names: Landmark names (legend).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5 * image.shape[0] / max(1, image.shape[1]) + 0.4), dpi=120)
    ax.imshow(image, cmap="gray", interpolation="lanczos")
    for k, name in enumerate(names):
        colour = matplotlib.colors.to_rgb(_COLOURS[k % len(_COLOURS)])
        peak = float(heatmaps[k].max()) or 1.0
        layer = np.zeros((*heatmaps[k].shape, 4))
        layer[..., :3] = colour
        layer[..., 3] = 0.75 * np.clip(heatmaps[k] / peak, 0, 1)
        ax.imshow(layer, interpolation="bilinear")
        ax.scatter([points[k, 0] - 0.5], [points[k, 1] - 0.5], s=25, marker="x", color=colour, label=name)
    ax.legend(fontsize=6, loc="lower right", framealpha=0.6)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


class _PeakLogit:
    """The logit of one landmark channel at a fixed input pixel (its predicted peak)."""

    def __init__(self, channel: int, row: int, col: int) -> None:
        self.channel, self.row, self.col = channel, row, col

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[self.channel, self.row, self.col]


@CAM_ADAPTERS.register("keypoints")
class KeypointsCamAdapter(SegmentationCamAdapter):
    """One target per landmark: its logit at the predicted peak. Model and default layer (the network's
    bottleneck) as for segmentation, whose dense outputs these heat maps share."""

    def targets(self, task: Any, output: torch.Tensor, requested: Sequence[str] | None) -> list[CamTarget]:
        names = list(task.state.class_names)
        logits = output.detach()[0].float()
        if requested and any(r.lower() == ALL for r in requested):
            chosen = list(range(len(names)))
        elif requested:
            unknown = [r for r in requested if r not in names]
            if unknown:
                raise ConfigError(f"landmark {unknown[0]!r} is not one of {names}. Fix: --class NAME or --class {ALL}.")
            chosen = [names.index(r) for r in requested]
        else:
            chosen = [0]
        out = []
        for k in chosen:
            prob = torch.softmax(logits[k].reshape(-1), 0)
            peak = int(prob.argmax())
            row, col = divmod(peak, logits.shape[-1])
            out.append(CamTarget(names[k], _PeakLogit(k, row, col), float(prob[peak])))
        return out
