"""Mask measurements on synthetic masks whose thickness and angle are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from osteon.metrics.mask_measurements import angle_difference, largest_component, mean_thickness, orientation_deg


def _line(shape: tuple[int, int], angle_deg: float, width: float = 1.5, length: float = 60.0) -> np.ndarray:
    """A straight bar through the centre, ``angle_deg`` above the horizontal (y up)."""
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w]
    x = cols - (w - 1) / 2
    y = -(rows - (h - 1) / 2)
    t = math.radians(angle_deg)
    along = x * math.cos(t) + y * math.sin(t)
    across = -x * math.sin(t) + y * math.cos(t)
    return (np.abs(across) <= width) & (np.abs(along) <= length / 2)


def test_mean_thickness_of_a_band_and_of_two_bands():
    m = np.zeros((40, 50), bool)
    m[10:14, 5:45] = True
    assert mean_thickness(m) == 4.0
    m[25:31, 5:45] = True  # a second band: thicknesses add up per column
    assert mean_thickness(m) == 10.0
    assert mean_thickness(m, row_spacing=0.1) == pytest.approx(1.0)


def test_mean_thickness_is_area_over_occupied_columns():
    m = np.zeros((20, 20), bool)
    m[5:7, 0:10] = True  # 2 px thick over 10 columns
    m[5:9, 15:20] = True  # 4 px thick over 5 columns
    assert mean_thickness(m) == pytest.approx((20 + 20) / 15)


def test_empty_masks_give_nan():
    empty = np.zeros((8, 8), bool)
    assert math.isnan(mean_thickness(empty))
    assert math.isnan(orientation_deg(empty))


@pytest.mark.parametrize("angle", [0.0, 15.0, 30.0, -25.0, 60.0, 90.0])
def test_orientation_of_a_bar(angle):
    assert angle_difference(orientation_deg(_line((101, 101), angle)), angle) < 1.0


def test_orientation_uses_the_largest_component():
    m = np.zeros((101, 101), bool)
    m[:50] = _line((101, 101), 20.0, length=80)[25:75]  # the long bar, in the upper half
    m[60:] = _line((101, 101), -40.0, length=20)[30:71]  # a short bar below it
    assert largest_component(m).sum() < m.sum()
    assert abs(orientation_deg(m) - 20.0) < 1.0


def test_orientation_with_anisotropic_pixels():
    m = np.zeros((50, 50), bool)
    for i in range(40):  # one row down per column in pixels: -45° in pixels
        m[5 + i, 5 + i] = True
    assert orientation_deg(m) == pytest.approx(-45.0, abs=0.5)
    assert orientation_deg(m, spacing=(0.5, 1.0)) == pytest.approx(-math.degrees(math.atan(0.5)), abs=0.5)


def test_angle_difference_wraps_at_180():
    assert angle_difference(89.0, -89.0) == pytest.approx(2.0)
    assert angle_difference(10.0, 30.0) == pytest.approx(20.0)
    np.testing.assert_allclose(angle_difference(np.array([0.0, 170.0]), np.array([180.0, -10.0])), [0.0, 0.0])


def test_rejects_non_2d():
    with pytest.raises(ValueError, match="2D"):
        mean_thickness(np.zeros((2, 4, 4)))
