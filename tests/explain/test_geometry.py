"""Undoing the letterbox: input-space maps back onto the original pixel grid."""

from __future__ import annotations

import numpy as np
import pytest

from osteon.data.transforms import Preprocessing, letterbox
from osteon.explain import fit_within, input_region, to_original


@pytest.mark.parametrize(("height", "width"), [(120, 80), (50, 200), (64, 64), (300, 301)])
def test_round_trip_recovers_the_image(height, width):
    rng = np.random.default_rng(0)
    image = np.kron(rng.random((height // 10 + 1, width // 10 + 1)), np.ones((10, 10)))[:height, :width].astype(
        np.float32
    )
    unit, box = letterbox(image, 96)
    back = to_original(unit, box, Preprocessing(image_size=96))
    assert back.shape == (height, width)
    assert np.corrcoef(back.ravel(), image.ravel())[0, 1] > 0.9


def test_padding_is_cropped_away():
    _, box = letterbox(np.ones((40, 100), dtype=np.float32), 50)
    top, left, h, w = input_region(box, 50)
    assert (top, left, h, w) == (15, 0, 20, 50)
    ones_on_image = np.zeros((50, 50), dtype=np.float32)
    ones_on_image[top : top + h, left : left + w] = 1.0
    back = to_original(ones_on_image, box, Preprocessing(image_size=50))
    assert back.min() == pytest.approx(1.0)  # no padding (zeros) leaks into the original's map


def test_thumbnail_size_and_validation():
    _, box = letterbox(np.ones((400, 200), dtype=np.float32), 32)
    small = to_original(
        np.ones((32, 32), dtype=np.float32), box, Preprocessing(image_size=32), out_hw=fit_within((400, 200), 100)
    )
    assert small.shape == (100, 50)
    with pytest.raises(ValueError, match=r"must be \(32, 32\)"):
        to_original(np.ones((16, 16), dtype=np.float32), box, Preprocessing(image_size=32))
    assert fit_within((10, 20), 100) == (10, 20)  # never enlarged
