"""CAM methods by name, layer lookup, and every method on a model with known evidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from osteon.errors import ConfigError
from osteon.explain import CamMethod, compute_cams, parse_method, resolve_layer
from osteon.explain.targets import cam_adapter_for


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gradcam", CamMethod.GRADCAM),
        ("GradCAM++", CamMethod.GRADCAM_PLUS_PLUS),
        ("gradcampp", CamMethod.GRADCAM_PLUS_PLUS),
        ("grad-cam", CamMethod.GRADCAM),
        ("EigenCAM", CamMethod.EIGENCAM),
        (CamMethod.SCORECAM, CamMethod.SCORECAM),
    ],
)
def test_parse_method(name, expected):
    assert parse_method(name) is expected


def test_unknown_method_lists_the_available_ones():
    with pytest.raises(ConfigError, match=r"Unknown CAM method 'smoothgrad'.*gradcam, gradcam\+\+"):
        parse_method("smoothgrad")


def test_resolve_layer(brightness_predictor):
    model = brightness_predictor.model
    assert resolve_layer(model, "backbone.pool") is model.backbone.pool
    with pytest.raises(ConfigError, match=r"Did you mean: backbone\.conv"):
        resolve_layer(model, "backbone.cnv")
    with pytest.raises(ConfigError, match="no layer ''"):
        resolve_layer(model, "")


@pytest.mark.parametrize("method", list(CamMethod))
def test_every_method_finds_the_bright_region(brightness_predictor, method):
    unit = torch.full((1, 1, 64, 64), 0.1)
    unit[..., 40:60, 8:28] = 1.0
    x = (unit - 0.5) / 0.25
    adapter = cam_adapter_for("classify")
    module = adapter.cam_model(brightness_predictor.model, None)
    target = adapter.targets(brightness_predictor.task, module(x).detach(), ["1"])[0]
    (cam,) = compute_cams(module, x, [target.fn], layer=brightness_predictor.model.backbone.pool, method=method)
    assert cam.shape == (64, 64) and cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0 + 1e-6
    y, xx = np.unravel_index(np.argmax(cam), cam.shape)
    assert 36 <= y < 64 and 4 <= xx < 32, f"{method}: peak at {(y, xx)}"


def test_compute_cams_takes_one_image(brightness_predictor):
    with pytest.raises(ValueError, match=r"one image of shape \(1, C, H, W\)"):
        compute_cams(
            brightness_predictor.model, torch.zeros(2, 1, 8, 8), [], layer=brightness_predictor.model.backbone.pool
        )
