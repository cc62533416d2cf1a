"""``explain_image``: class-activation maps of a trained model on one image, in the image's own pixels."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from osteon.data.transforms import Letterbox, display_plane, load_unit_image, normalize, with_channels
from osteon.errors import ConfigError
from osteon.explain.geometry import to_original
from osteon.explain.methods import CamMethod, compute_cams, parse_method, resolve_layer
from osteon.explain.targets import VOLUME_EXPLAINERS, CamTarget, cam_adapter_for

if TYPE_CHECKING:
    from osteon.engine.predictor import Predictor


@dataclass(frozen=True)
class Explanation:
    """One class-activation map of one image.

    Attributes:
        image: The explained file.
        target: What the map explains (class or grade name, ``"value"``, a box ...).
        score: The model's score for the target (probability, value), when it has one.
        prediction: The model's prediction for the image (its most probable class, or the value).
        method: CAM method name.
        layer: Dotted name of the layer whose activations were used.
        map: ``(H, W)`` float32 in [0, 1] on the original image's pixel grid (as displayed, EXIF rotation
            applied): row = y downwards, column = x rightwards. Min–max scaled per map.
        input_map: ``(S, S)`` the same map on the model's letterboxed input.
        overlay: PNG written by ``out_dir`` (map over the image + colour bar), else ``None``.
        raw: ``.npy`` of ``map`` written by ``out_dir``, else ``None``.
        region: The explained box ``(x1, y1, x2, y2)`` in original pixels (detection), else ``None``.
    """

    image: Path
    target: str
    score: float | None
    prediction: str
    method: str
    layer: str
    map: np.ndarray
    input_map: np.ndarray
    overlay: Path | None = None
    raw: Path | None = None
    region: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class InputMaps:
    """Maps of one image on the model input, before they are mapped back (used by reports and checks)."""

    image: Path
    unit: np.ndarray  # (S, S) the letterboxed input in [0, 1]
    geometry: Letterbox
    targets: list[CamTarget]
    maps: list[np.ndarray]  # (S, S) per target
    prediction: str
    method: str
    layer: str


def model_input(predictor: Predictor, path: str | Path) -> tuple[np.ndarray, Letterbox, torch.Tensor]:
    """``(unit (S, S) in [0, 1], letterbox geometry, normalised (1, 1, S, S) tensor)`` of an image file."""
    unit, box = load_unit_image(path, predictor.preprocessing)
    x = normalize(with_channels(torch.from_numpy(unit))[None], predictor.preprocessing)
    return display_plane(unit), box, x


def covariate_tensor(predictor: Predictor, covariates: dict[str, Any] | None) -> torch.Tensor | None:
    """The encoded covariate vector ``(1, D)`` the model expects (missing values encoded as missing)."""
    if not predictor.covariates.columns:
        return None
    return torch.from_numpy(predictor.covariates.transform(pd.DataFrame([covariates or {}])))


def input_maps(
    predictor: Predictor,
    path: str | Path,
    *,
    method: str | CamMethod = CamMethod.GRADCAM,
    targets: Sequence[str] | None = None,
    layer: str | None = None,
    covariates: dict[str, Any] | None = None,
) -> InputMaps:
    """CAMs of one image on the model input, one per requested target (see :func:`explain_image`)."""
    method = parse_method(method)
    adapter = cam_adapter_for(predictor.task.name)
    unit, box, x = model_input(predictor, path)
    module = adapter.cam_model(predictor.model, covariate_tensor(predictor, covariates))
    module.eval()
    with torch.no_grad():
        output = module(x)
    chosen = adapter.targets(predictor.task, output, targets)
    layer_name = layer or adapter.default_layer(predictor.model, x)
    target_layer = resolve_layer(predictor.model, layer_name)
    maps = (
        compute_cams(
            module,
            x,
            [t.fn for t in chosen],
            layer=target_layer,
            method=method,
            reshape_transform=adapter.reshape_transform(predictor.model),
        )
        if chosen
        else []
    )
    return InputMaps(Path(path), unit, box, chosen, maps, _prediction(predictor, output), method.value, layer_name)


def _prediction(predictor: Predictor, output: torch.Tensor) -> str:
    predict = getattr(predictor.task, "predict", None)
    if predict is None or not isinstance(output, torch.Tensor):
        return ""
    prediction = predict(output.detach())[0]
    for attribute in ("label", "grade"):
        if hasattr(prediction, attribute):
            return str(getattr(prediction, attribute))
    if hasattr(prediction, "value"):
        return f"{prediction.value:.4g}"
    return str(prediction)


def explain_targets(
    predictor: Predictor,
    path: str | Path,
    *,
    method: str | CamMethod = CamMethod.GRADCAM,
    targets: Sequence[str] | None = None,
    layer: str | None = None,
    out_dir: str | Path | None = None,
    covariates: dict[str, Any] | None = None,
) -> list[Explanation]:
    """CAMs of one image for several targets (``targets=["all"]``: every class); see :func:`explain_image`.

    Tasks that read volumes (``volume_input``) are explained as slice overlays (:mod:`osteon.explain.volumes`), and
    ``tiled`` runs as stitched tile maps at the original resolution (:mod:`osteon.explain.tiles`).
    """
    # volume tasks, and tasks that read their own inputs and registered an explainer (tiled: tiles at full resolution)
    if predictor.task.volume_input or predictor.task.name in VOLUME_EXPLAINERS:
        if covariates:
            raise ConfigError("volume tasks take no covariates. Fix: drop the covariates.")
        return explain_volume(predictor, path, method=method, targets=targets, layer=layer, out_dir=out_dir)
    maps = input_maps(predictor, path, method=method, targets=targets, layer=layer, covariates=covariates)
    background = _original_image(path) if out_dir is not None else None
    out: list[Explanation] = []
    for target, input_map in zip(maps.targets, maps.maps, strict=True):
        original = to_original(input_map, maps.geometry, predictor.preprocessing)
        region = region_to_original(target.region, maps.geometry) if target.region is not None else None
        overlay = raw = None
        if out_dir is not None and background is not None:
            overlay, raw = _write(Path(out_dir), Path(path), maps.method, target.name, background, original, region)
        out.append(
            Explanation(
                Path(path),
                target.name,
                target.score,
                maps.prediction,
                maps.method,
                maps.layer,
                original,
                input_map,
                overlay,
                raw,
                region,
            )
        )
    return out


def explain_volume(
    predictor: Predictor,
    path: str | Path,
    *,
    method: str | CamMethod = CamMethod.GRADCAM,
    targets: Sequence[str] | None = None,
    layer: str | None = None,
    out_dir: str | Path | None = None,
) -> list[Explanation]:
    """Slice explanations of one volume by the task's registered explainer (:mod:`osteon.explain.volumes`).

    Raises:
        ConfigError: the task registered no volume explainer, or an option does not apply to volumes.
    """
    name = predictor.task.name
    if name not in VOLUME_EXPLAINERS:
        raise ConfigError(
            f"explanations of volumes are not available for task {name!r} (available for: "
            f"{', '.join(VOLUME_EXPLAINERS.names())}). Fix: register one in osteon.explain.volumes."
        )
    return VOLUME_EXPLAINERS.get(name)(
        predictor, Path(path), method=parse_method(method), targets=targets, layer=layer, out_dir=out_dir
    )


def region_to_original(
    box: tuple[float, float, float, float], geometry: Letterbox
) -> tuple[float, float, float, float]:
    """An ``(x1, y1, x2, y2)`` box from input pixels to original pixels (``original = (input - pad) / scale``)."""
    x1, y1, x2, y2 = box
    s = geometry.scale
    return ((x1 - geometry.pad_x) / s, (y1 - geometry.pad_y) / s, (x2 - geometry.pad_x) / s, (y2 - geometry.pad_y) / s)


def explain_image(
    predictor: Predictor,
    path: str | Path,
    *,
    method: str | CamMethod = CamMethod.GRADCAM,
    target_class: str | None = None,
    layer: str | None = None,
    out_dir: str | Path | None = None,
    covariates: dict[str, Any] | None = None,
) -> Explanation:
    """The class-activation map of one image, mapped back onto the original image.

    Args:
        predictor: A trained model (``Predictor.from_run(run)``).
        path: The image file (any format Osteon reads; 2D).
        method: A :class:`~osteon.explain.methods.CamMethod` name (``gradcam``, ``gradcam++``, ``eigencam`` ...).
        target_class: Class or grade to explain; default the predicted one. Regression: ignored.
        layer: Dotted module name; default the model's registered ``feature_layer`` (e.g. ``backbone.layer4``).
        out_dir: When given, write ``<stem>_<method>_<target>.png`` (map over the image at its original
            resolution, with a colour bar) and ``.npy`` (the map) there.
        covariates: Covariate values for models trained with ``--covariates``.

    Returns:
        The :class:`Explanation` (``map`` is ``(H, W)`` on the original pixel grid).

    Raises:
        ConfigError: unknown method, layer or class, or a task without CAM support.
        ImageReadError: the file cannot be read.

    Example:
        >>> from osteon.engine import Predictor
        >>> explanation = explain_image(Predictor.from_run("runs/fa-smoke"), "IMG0000019.jpg")  # doctest: +SKIP
        >>> explanation.map.shape  # doctest: +SKIP
        (2880, 2304)
    """
    requested = [target_class] if target_class else None
    return explain_targets(
        predictor, path, method=method, targets=requested, layer=layer, out_dir=out_dir, covariates=covariates
    )[0]


def _original_image(path: str | Path) -> np.ndarray:
    """The image as displayed, ``(H, W)`` grey in [0, 1], at full resolution."""
    from osteon.io import read_image, to_grayscale_float

    return to_grayscale_float(read_image(path))


def _write(
    out_dir: Path,
    path: Path,
    method: str,
    target: str,
    background: np.ndarray,
    cam: np.ndarray,
    region: tuple[float, float, float, float] | None = None,
) -> tuple[Path, Path]:
    from osteon.explain.overlay import save_overlay

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{path.stem}_{safe_name(method)}_{safe_name(target)}"
    if background.shape != cam.shape:  # should not happen: both are the displayed image's grid
        raise ValueError(f"{path}: image {background.shape} and map {cam.shape} differ.")
    overlay = save_overlay(background, cam, out_dir / f"{stem}.png", box=region)
    raw = out_dir / f"{stem}.npy"
    np.save(raw, cam.astype(np.float32))
    return overlay, raw


def safe_name(text: str) -> str:
    """A file-name-safe version of a class name or method (``gradcam++`` → ``gradcampp``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.replace("+", "p")).strip("_") or "target"
