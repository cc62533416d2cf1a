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


def _hand_written_window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """The formulas Osteon used before delegating to pydicom (PS3.3 C.11.2.1.2), kept to pin equality."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return (values - center) / width + 0.5
    if width <= 1:
        return (values > center - 0.5).astype(np.float64)
    return (values - (center - 0.5)) / (width - 1) + 0.5


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID", "UNKNOWN"])
@pytest.mark.parametrize(("center", "width"), [(2048.0, 4096.0), (40.0, 400.0), (-600.5, 1500.25), (100, 1), (7, 0.5)])
def test_window_equals_pydicom_apply_voi_lut_and_the_old_formulas(function: str, center: float, width: float) -> None:
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_voi_lut

    rng = np.random.default_rng(0)
    values = np.concatenate(
        [rng.uniform(center - width, center + width, 500), [center - width / 2, center + width / 2, center - 0.5]]
    ).astype(np.int32 if float(center).is_integer() else np.float32)
    image = Image(
        values.reshape(1, -1), P, window_center=center, window_width=width, extra={"voi_lut_function": function}
    )
    ours = to_grayscale_float(image)
    reference = function if function != "UNKNOWN" else "LINEAR"
    old = np.clip(_hand_written_window(values.astype(np.float64), center, width, reference), 0, 1).reshape(1, -1)
    np.testing.assert_allclose(ours, old, atol=2e-6)
    if not (reference == "LINEAR" and width < 1):  # a DICOM dataset as pydicom reads it, straight through
        ds = Dataset()
        ds.PhotometricInterpretation, ds.BitsStored, ds.PixelRepresentation = "MONOCHROME2", 16, 0
        ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = f"{center:g}", f"{width:g}", reference
        direct = apply_voi_lut(values.astype(np.float64), ds, prefer_lut=False) / 65535
        np.testing.assert_allclose(ours[0], direct, atol=2e-6)
