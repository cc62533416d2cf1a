"""CAM methods (from pytorch-grad-cam) by name, and target layers by dotted name.

The maps themselves are computed by the ``grad-cam`` package (Gildenblat et al.); Osteon adds the
name → class table, the layer lookup with an error that lists the model's layers, and one call that
returns a map at the model's input resolution.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from enum import StrEnum

import numpy as np
import torch
from torch import nn

from osteon.errors import ConfigError


class CamMethod(StrEnum):
    """Class-activation-map methods. Gradient-free ones (eigencam, scorecam, ablationcam) cost more or
    ignore the target (eigencam: first principal component of the activations, the same for every class)."""

    GRADCAM = "gradcam"
    GRADCAM_PLUS_PLUS = "gradcam++"
    HIRESCAM = "hirescam"
    XGRADCAM = "xgradcam"
    LAYERCAM = "layercam"
    EIGENCAM = "eigencam"
    EIGENGRADCAM = "eigengradcam"
    SCORECAM = "scorecam"
    ABLATIONCAM = "ablationcam"


#: Methods whose map does not depend on the requested target.
TARGET_AGNOSTIC = frozenset({CamMethod.EIGENCAM})


def parse_method(method: str | CamMethod) -> CamMethod:
    """The :class:`CamMethod` named ``method`` (case-insensitive; ``gradcampp`` and ``gradcam_plus_plus`` too).

    Raises:
        ConfigError: unknown name; the message lists the available ones.
    """
    if isinstance(method, CamMethod):
        return method
    key = str(method).strip().lower().replace("_plus_plus", "++").replace("pp", "++").replace("-", "")
    for member in CamMethod:
        if member.value == key:
            return member
    raise ConfigError(
        f"Unknown CAM method {method!r}. Available: {', '.join(m.value for m in CamMethod)}. Fix: pass one of them "
        "to --method."
    )


def _cam_class(method: CamMethod) -> type:
    import pytorch_grad_cam as pgc

    return {
        CamMethod.GRADCAM: pgc.GradCAM,
        CamMethod.GRADCAM_PLUS_PLUS: pgc.GradCAMPlusPlus,
        CamMethod.HIRESCAM: pgc.HiResCAM,
        CamMethod.XGRADCAM: pgc.XGradCAM,
        CamMethod.LAYERCAM: pgc.LayerCAM,
        CamMethod.EIGENCAM: pgc.EigenCAM,
        CamMethod.EIGENGRADCAM: pgc.EigenGradCAM,
        CamMethod.SCORECAM: pgc.ScoreCAM,
        CamMethod.ABLATIONCAM: pgc.AblationCAM,
    }[method]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule of ``model`` at dotted path ``name`` (e.g. ``"backbone.layer4"``).

    Raises:
        ConfigError: no such submodule; the message lists the model's top-level blocks and close names.
    """
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    from difflib import get_close_matches

    close = get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.5)
    blocks = [n for n in modules if n and n.count(".") <= 2][:40]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"The model has no layer {name!r}.{hint} Layers include: {', '.join(blocks)}. "
        "Fix: pass one of them to --target-layer (a convolutional block near the output works best)."
    )


def compute_cams(
    model: nn.Module,
    image: torch.Tensor,
    targets: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    *,
    layer: nn.Module,
    method: str | CamMethod = CamMethod.GRADCAM,
    reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[np.ndarray]:
    """One class-activation map per target for a single image.

    Args:
        model: Module whose ``forward(image)`` returns the output the targets read (see
            :mod:`osteon.explain.targets`); put in eval mode by pytorch-grad-cam.
        image: ``(1, C, S, S)`` normalised model input.
        targets: Callables ``target(output_of_one_image) -> scalar tensor`` (pytorch-grad-cam's contract).
        layer: The module whose activations (and gradients) the map is built from.
        method: A :class:`CamMethod` or its name.
        reshape_transform: Turns the layer's output into ``(B, C, h, w)`` (transformers, FPN outputs).

    Returns:
        One ``(S, S)`` float32 map per target at the input's resolution, min–max scaled to [0, 1] per map
        (pytorch-grad-cam's convention: a map that is zero everywhere stays zero).
    """
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"compute_cams takes one image of shape (1, C, H, W); got {tuple(image.shape)}.")
    cam_cls = _cam_class(parse_method(method))
    cam = cam_cls(model=model, target_layers=[layer], reshape_transform=reshape_transform)
    if hasattr(cam, "batch_size"):
        cam.batch_size = 32  # ScoreCAM/AblationCAM: masked copies per forward pass
    try:
        # ScoreCAM/AblationCAM draw tqdm bars on stderr for every map; keep the console for Osteon's own output
        with torch.enable_grad(), contextlib.redirect_stderr(io.StringIO()):
            return [np.asarray(cam(input_tensor=image, targets=[target])[0], dtype=np.float32) for target in targets]
    finally:
        cam.activations_and_grads.release()
