"""to_grayscale_float: hand-computed luminance, bit-depth scaling and VOI windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from osteon.io import to_grayscale_float
from osteon.io.image import Image

P = Path("x")


def test_rgb_to_luminance() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [100, 100, 100]]], dtype=np.uint8)
    out = to_grayscale_float(Image(rgb, P, photometric="RGB", bits_stored=8))
    expected = np.array([[0.299, 0.587], [0.114, 100 / 255]])
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.dtype == np.float32 and out.shape == (2, 2)


def test_16bit_range_uses_bits_stored() -> None:
    array = np.array([[0, 4095, 8190, 65535]], dtype=np.uint16)
    np.testing.assert_allclose(
        to_grayscale_float(Image(array, P, bits_stored=16)), [[0, 4095 / 65535, 8190 / 65535, 1]]
    )
    twelve = to_grayscale_float(Image(array, P, bits_stored=12))
    np.testing.assert_allclose(twelve, [[0, 1, 1, 1]])  # above 2**12 - 1 clipped


def test_value_range_from_reader_wins_over_bits() -> None:
    hu = np.array([[-1024, 0, 3071]], dtype=np.int16)
    image = Image(hu, P, modality="CT", bits_stored=12, extra={"value_range": (-1024.0, 3071.0)})
    np.testing.assert_allclose(to_grayscale_float(image), [[0, 1024 / 4095, 1]], atol=1e-6)


def test_linear_window() -> None:
    # DICOM LINEAR: c=100, w=201 → (x - 99.5) / 200 + 0.5, clipped
    array = np.array([[-100, 0, 99.5, 150, 300]], dtype=np.float32)
    image = Image(array, P, window_center=100.0, window_width=201.0)
    np.testing.assert_allclose(to_grayscale_float(image), [[0, 0.0025, 0.5, 0.7525, 1]], atol=1e-6)


def test_window_exact_and_sigmoid() -> None:
    array = np.array([[40, 90, 140]], dtype=np.int16)
    exact = Image(array, P, window_center=90.0, window_width=100.0, extra={"voi_lut_function": "LINEAR_EXACT"})
    np.testing.assert_allclose(to_grayscale_float(exact), [[0, 0.5, 1]], atol=1e-6)
    sigmoid = Image(array, P, window_center=90.0, window_width=100.0, extra={"voi_lut_function": "SIGMOID"})
    expected = 1 / (1 + np.exp(-4 * (array - 90) / 100))
    np.testing.assert_allclose(to_grayscale_float(sigmoid), expected, atol=1e-6)


def test_float_min_max_and_constant() -> None:
    array = np.array([[2.0, 3.0], [4.0, 6.0]], dtype=np.float32)
    np.testing.assert_allclose(to_grayscale_float(Image(array, P, bits_stored=32)), [[0, 0.25], [0.5, 1]])
    flat = to_grayscale_float(Image(np.full((2, 2), 7.0, np.float32), P))
    np.testing.assert_array_equal(flat, np.zeros((2, 2)))


def test_volume_raises_mentioning_slices() -> None:
    with pytest.raises(ValueError, match="slice"):
        to_grayscale_float(Image(np.zeros((3, 4, 5), np.uint8), P))
