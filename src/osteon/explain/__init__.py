"""Class-activation maps (via pytorch-grad-cam) on the original image, overlays, and their sanity check.

Example:
    >>> from osteon.engine import Predictor
    >>> from osteon.explain import explain_image
    >>> e = explain_image(Predictor.from_run("runs/fa-smoke"), "IMG0000019.jpg", out_dir="cams")  # doctest: +SKIP
    >>> e.map.shape, e.overlay  # doctest: +SKIP
    ((2880, 2304), PosixPath('cams/IMG0000019_gradcam_1.png'))
"""

from osteon.explain import dense_targets as _dense_targets  # noqa: F401  (registers segment/detect adapters)
from osteon.explain import heatmaps as _heatmaps  # noqa: F401  (registers the keypoints adapter)
from osteon.explain import multitask_targets as _multitask_targets  # noqa: F401  (registers the multitask adapter)
from osteon.explain import tiles as _tiles  # noqa: F401  (registers the tiled explainer)
from osteon.explain import volumes as _volumes  # noqa: F401  (registers the slice explainers of volume tasks)
from osteon.explain.explainer import Explanation, InputMaps, explain_image, explain_targets, input_maps
from osteon.explain.geometry import fit_within, input_region, to_original
from osteon.explain.methods import CamMethod, compute_cams, parse_method, resolve_layer
from osteon.explain.overlay import blend, save_overlay, with_colorbar
from osteon.explain.sanity import (
    RandomizationStep,
    SanityCheckResult,
    parameter_blocks,
    randomization_sanity_check,
    sanity_figure,
    save_sanity_figure,
)
from osteon.explain.targets import CAM_ADAPTERS, CamAdapter, CamTarget, cam_adapter_for

__all__ = [
    "CAM_ADAPTERS",
    "CamAdapter",
    "CamMethod",
    "CamTarget",
    "Explanation",
    "InputMaps",
    "RandomizationStep",
    "SanityCheckResult",
    "blend",
    "cam_adapter_for",
    "compute_cams",
    "explain_image",
    "explain_targets",
    "fit_within",
    "input_maps",
    "input_region",
    "parameter_blocks",
    "parse_method",
    "randomization_sanity_check",
    "resolve_layer",
    "sanity_figure",
    "save_overlay",
    "save_sanity_figure",
    "to_original",
    "with_colorbar",
]
