"""Overlays: the map over the image pixel for pixel, a colour bar beside it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from osteon.explain import blend, save_overlay, with_colorbar


def test_blend_weights_image_and_colour():
    image = np.zeros((4, 6), dtype=np.float32)
    cam = np.zeros((4, 6), dtype=np.float32)
    cam[0, 0] = 1.0
    rgb = blend(image, cam, alpha=0.5)
    assert rgb.shape == (4, 6, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] > rgb[0, 0, 2]  # jet at 1 is red
    assert rgb[1, 1, 2] > rgb[1, 1, 0]  # jet at 0 is blue
    with pytest.raises(ValueError, match="same shape"):
        blend(image, cam[:, :5])


def test_colour_bar_leaves_the_image_pixels_alone():
    rgb = np.random.default_rng(0).integers(0, 255, (200, 150, 3), dtype=np.uint8)
    out = with_colorbar(rgb)
    assert out.shape[0] == 200 and out.shape[1] > 150
    np.testing.assert_array_equal(out[:, :150], rgb)
    bar = out[:, 150:]
    assert len({tuple(p) for p in bar.reshape(-1, 3)}) > 20  # a colour ramp, not a blank strip


def test_save_overlay_writes_a_png(tmp_path):
    path = save_overlay(np.full((30, 40), 0.5), np.linspace(0, 1, 1200).reshape(30, 40), tmp_path / "a" / "o.png")
    with Image.open(path) as image:
        assert image.size[1] == 30 and image.size[0] > 40 and image.mode == "RGB"
