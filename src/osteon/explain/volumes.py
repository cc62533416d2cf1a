"""Explaining volume models as slice overlays (``osteon explain`` on a run whose task reads volumes).

Each volume task registers a function in :data:`osteon.explain.targets.VOLUME_EXPLAINERS` under its name;
:func:`osteon.explain.explain_targets` dispatches to it when the task's ``volume_input`` capability is set.

* ``slices`` (2.5D): Grad-CAM of the backbone's last feature maps **on the slice that weighed most** in the pooling
  (attention weight, or the slice that won the max), for the predicted class (or ``--class``): the gradient of the
  class logit of the whole series flows through the pooling to every slice, and the map of the key slice is drawn
  on that slice at the file's own resolution. The PNG is ``<stem>_slice<k>_gradcam_<class>.png`` (``k`` 0-based, as
  stored).
* ``segment3d``: the predicted probability of the structure drawn on the slices (first axis as stored) with the most
  predicted foreground (at most :data:`MAX_SEGMENT_SLICES`), ``<stem>_slice<k>_probability.png``; a volume where
  nothing is predicted gives its middle slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from osteon.errors import ConfigError
from osteon.explain.explainer import Explanation, safe_name
from osteon.explain.methods import CamMethod
from osteon.explain.targets import VOLUME_EXPLAINERS, _select

if TYPE_CHECKING:
    from osteon.engine.predictor import Predictor

#: Slices drawn per volume for a 3D segmentation.
MAX_SEGMENT_SLICES = 3


def volume_stem(path: Path) -> str:
    """The file name without its volume suffixes (``a.nii.gz`` → ``a``)."""
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return path.stem


def _unit(values: np.ndarray) -> np.ndarray:
    """Values scaled to [0, 1] by the 0.5–99.5 percentiles."""
    values = np.asarray(values, dtype=np.float32)
    low, high = np.percentile(values, [0.5, 99.5])
    return np.clip((values - low) / (high - low), 0, 1) if high > low else np.zeros_like(values)


def _write(
    out_dir: str | Path | None, stem: str, background: np.ndarray, heat: np.ndarray
) -> tuple[Path | None, Path | None]:
    if out_dir is None:
        return None, None
    from osteon.explain.overlay import save_overlay

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"{stem}.npy"
    np.save(raw, heat.astype(np.float32))
    return save_overlay(background, heat, out / f"{stem}.png"), raw


def _refuse_options(task: str, method: CamMethod, layer: str | None) -> None:
    if method != CamMethod.GRADCAM:
        raise ConfigError(
            f"task {task!r} explains volumes with gradcam only; got {method.value!r}. Fix: --method gradcam."
        )
    if layer is not None:
        raise ConfigError(
            f"task {task!r} uses the backbone's last feature maps; --target-layer does not apply. Fix: omit it."
        )


@VOLUME_EXPLAINERS.register("slices")
def explain_series(
    predictor: Predictor,
    path: Path,
    *,
    method: CamMethod,
    targets: Sequence[str] | None,
    layer: str | None,
    out_dir: str | Path | None,
) -> list[Explanation]:
    """Grad-CAM on the key slice of a 2.5D model (see the module docstring)."""
    from osteon.data.volumes import read_volume
    from osteon.tasks.slices import series_input

    _refuse_options("slices", method, layer)
    task = predictor.task
    x = series_input(path, predictor.preprocessing)
    output, weights, chosen, grads, maps = bag_gradients(predictor, x, targets, what="slice")
    names, scores = list(task.state.class_names), task.scores(output.detach())[0]
    key = int(np.argmax(weights))
    volume = read_volume(path).array
    background = _unit(volume)[key]
    prediction = task.predict(output.detach())[0].label
    out = []
    for index, grad in zip(chosen, grads, strict=True):
        cam = torch.relu((grad[key].mean(dim=(1, 2), keepdim=True) * maps[key]).sum(0))
        heat = torch.nn.functional.interpolate(
            cam[None, None], size=background.shape, mode="bilinear", align_corners=False
        )[0, 0].numpy()
        heat = (heat - heat.min()) / (heat.max() - heat.min()) if heat.max() > heat.min() else np.zeros_like(heat)
        stem = f"{safe_name(volume_stem(path))}_slice{key}_gradcam_{safe_name(names[index])}"
        overlay, raw = _write(out_dir, stem, background, heat)
        out.append(
            Explanation(
                path,
                f"{names[index]} (slice {key}, weight {weights[key]:.2f})",
                float(scores[index]),
                str(prediction),
                method.value,
                "backbone (last feature maps)",
                heat.astype(np.float32),
                cam.detach().numpy().astype(np.float32),
                overlay,
                raw,
            )
        )
    return out


@VOLUME_EXPLAINERS.register("segment3d")
def explain_segmentation(
    predictor: Predictor,
    path: Path,
    *,
    method: CamMethod,
    targets: Sequence[str] | None,
    layer: str | None,
    out_dir: str | Path | None,
) -> list[Explanation]:
    """The predicted probability on the slices with the most predicted foreground (see the module docstring)."""
    from osteon.data.volumes import read_volume

    if layer is not None:
        raise ConfigError("segment3d draws its predicted probabilities; --target-layer does not apply. Fix: omit it.")
    prediction = predictor.predict_image(path)
    volume = _unit(read_volume(path).array)
    probs = np.asarray(prediction.probabilities)[-1] if prediction.probabilities is not None else prediction.mask
    foreground = prediction.mask.reshape(len(prediction.mask), -1).sum(1)
    order = [int(k) for k in np.argsort(-foreground, kind="stable") if foreground[k] > 0][:MAX_SEGMENT_SLICES]
    if not order:
        order = [len(foreground) // 2]
    volume_ml = prediction.measurements.get("structure", {}).get("volume_ml")
    out = []
    for k in order:
        heat = np.clip(np.asarray(probs[k], dtype=np.float32), 0, 1)
        overlay, raw = _write(out_dir, f"{safe_name(volume_stem(path))}_slice{k}_probability", volume[k], heat)
        out.append(
            Explanation(
                path,
                f"structure (slice {k}, {int(foreground[k])} voxels)",
                float(heat.max()),
                f"{volume_ml:.2f} mL" if volume_ml is not None else "",
                "probability",
                "output",
                heat,
                heat,
                overlay,
                raw,
            )
        )
    return out


def bag_gradients(
    predictor: Predictor, x: torch.Tensor, targets: Sequence[str] | None, *, what: str
) -> tuple[torch.Tensor, np.ndarray, list[int], list[torch.Tensor], torch.Tensor]:
    """One forward/backward of a bag model (slices or tiles): its output, the pooling weights of the instances,
    the chosen class indices, and per chosen class the gradients of its logit w.r.t. each instance's feature maps
    ``(T, C, h, w)`` together with those maps.

    Raises:
        ConfigError: the backbone gives no spatial feature maps (a CAM needs a convolutional backbone).
    """
    task, model = predictor.task, predictor.model
    model.eval()
    model.capture_maps = True
    try:
        with torch.enable_grad():
            output = model(x.requires_grad_(False))
            parts = list(model.feature_maps)  # chunks of (T, C, h, w), in the graph
            weights = model.last_weights[0].detach().cpu().numpy()
            scores = task.scores(output.detach())[0]
            chosen = _select(list(task.state.class_names), targets, int(np.argmax(scores)), "class")
            grads = [torch.cat(torch.autograd.grad(output[0, i], parts, retain_graph=True)) for i in chosen]
            maps = torch.cat(parts).detach()
    finally:
        model.capture_maps = False
        model.feature_maps = []
    if maps.ndim != 4:
        raise ConfigError(
            f"model {predictor.meta['config'].get('model')!r} gives no spatial feature maps "
            f"({tuple(maps.shape)}); {what} CAMs need a convolutional backbone."
        )
    return output, weights, chosen, grads, maps
