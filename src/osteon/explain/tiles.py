"""Explaining a ``tiled`` run (full-resolution classification from a bag of tiles) on the original image's pixels.

Registered in :data:`osteon.explain.targets.VOLUME_EXPLAINERS` (the registry of tasks that read and explain their own
inputs), so ``osteon explain RUN IMAGE`` and :func:`osteon.explain.explain_targets` use it. One image gives:

* **Grad-CAM per tile, stitched** (one per requested class; default the predicted one): the gradient of the class
  logit of the whole image flows through the pooling to every tile's last feature maps; each tile's map is
  upsampled to the tile, pasted where the tile lies (overlaps keep the maximum), scaled by the maximum over all
  tiles (so tiles keep their relative weight) and resized to the original resolution.
  ``<stem>_gradcam_<class>.png`` / ``.npy``.
* **Attention**: each tile's pooling weight painted over the area it covers (scaled by the largest weight), the key
  tile outlined. ``<stem>_attention.png`` / ``.npy``. Pixels no chosen tile covers are 0 in both maps.

The context instance of a two-scale run (``--tile-context``) takes part in the prediction but is not drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from osteon.data.tiles import stitch, tile_boxes
from osteon.explain.explainer import Explanation, safe_name
from osteon.explain.methods import CamMethod
from osteon.explain.targets import VOLUME_EXPLAINERS
from osteon.explain.volumes import _refuse_options, bag_gradients

if TYPE_CHECKING:
    from osteon.engine.predictor import Predictor


def to_original_grid(canvas: np.ndarray, original_hw: tuple[int, int]) -> np.ndarray:
    """A ``(h, w)`` map on the tile-scale grid resized to ``original_hw`` (bilinear), float32."""
    if canvas.shape == tuple(original_hw):
        return canvas.astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(canvas, dtype=np.float32))[None, None]
    out = torch.nn.functional.interpolate(t, size=tuple(original_hw), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


@VOLUME_EXPLAINERS.register("tiled")
def explain_tiles(
    predictor: Predictor,
    path: Path,
    *,
    method: CamMethod,
    targets: Sequence[str] | None,
    layer: str | None,
    out_dir: str | Path | None,
) -> list[Explanation]:
    """Stitched per-tile Grad-CAMs and the attention map of one image (see the module docstring)."""
    from osteon.tasks.tiled import TiledClassificationTask, TileOptions, image_bag

    _refuse_options("tiled", method, layer)
    task = cast(TiledClassificationTask, predictor.task)
    options = TileOptions.of(task.state)
    x, origins, image = image_bag(task.state, path, predictor.preprocessing)
    offset = int(options.context)
    output, weights, chosen, grads, maps = bag_gradients(predictor, x, targets, what="tile")
    names, scores = list(task.state.class_names), task.scores(output.detach())[0]
    size, hw, original = options.size, image.hw, image.original_hw
    tile_weights = weights[offset : offset + len(origins)]
    key = int(np.argmax(tile_weights))
    x1, y1, x2, y2 = (float(v) for v in tile_boxes(origins[key][None], size, hw, original)[0])
    key_box = (x1, y1, x2, y2)
    prediction = task.predict(output.detach())[0].label
    background = _original_image(path) if out_dir is not None else None
    stem = safe_name(path.stem)
    out = []
    for index, grad in zip(chosen, grads, strict=True):
        cams = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * maps).sum(1))[offset:]  # (T, h, w)
        tiles = torch.nn.functional.interpolate(cams[:, None], size=(size, size), mode="bilinear", align_corners=False)
        canvas = stitch(tiles[:, 0].numpy(), origins, size, hw)
        canvas = canvas / canvas.max() if canvas.max() > 0 else canvas
        heat = np.clip(to_original_grid(canvas, original), 0, 1)
        overlay, raw = _write(out_dir, f"{stem}_gradcam_{safe_name(names[index])}", background, heat, None)
        out.append(
            Explanation(
                path,
                f"{names[index]} ({len(origins)} tiles)",
                float(scores[index]),
                prediction,
                method.value,
                "backbone (last feature maps), per tile",
                heat,
                canvas,
                overlay,
                raw,
            )
        )
    canvas = stitch(tile_weights / max(float(tile_weights.max()), 1e-12), origins, size, hw)
    heat = np.clip(to_original_grid(canvas, original), 0, 1)
    overlay, raw = _write(out_dir, f"{stem}_attention", background, heat, key_box)
    label = "attention" if options.pooling == "attention" else f"{options.pooling}-pooling share"
    out.append(
        Explanation(
            path,
            f"{label} (key tile weight {tile_weights[key]:.2f})",
            float(tile_weights[key]),
            prediction,
            "attention",
            "pooling",
            heat,
            canvas,
            overlay,
            raw,
            key_box,
        )
    )
    return out


def _original_image(path: Path) -> np.ndarray:
    from osteon.io import read_image, to_grayscale_float

    return to_grayscale_float(read_image(path))


def _write(
    out_dir: str | Path | None,
    stem: str,
    background: np.ndarray | None,
    heat: np.ndarray,
    box: tuple[float, float, float, float] | None,
) -> tuple[Path | None, Path | None]:
    if out_dir is None or background is None:
        return None, None
    from osteon.explain.overlay import save_overlay

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"{stem}.npy"
    np.save(raw, heat.astype(np.float32))
    return save_overlay(background, heat, out / f"{stem}.png", box=box), raw
