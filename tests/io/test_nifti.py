"""NIfTI volumes: slice-first layout, spacing from zooms, affine permuted to array order, size guard."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from osteon.errors import ImageReadError, ImageTooLargeError
from osteon.io import read_image

AFFINE = np.array(
    [
        [0.5, 0.0, 0.0, -10.0],
        [0.0, 0.8, 0.0, 20.0],
        [0.0, 0.0, 3.0, 5.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _volume() -> np.ndarray:
    return np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # (i, j, k) = (x, y, z)


@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
def test_layout_spacing_and_affine(tmp_path: Path, name: str) -> None:
    data = _volume()
    path = tmp_path / name
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    image = read_image(path)
    assert image.array.shape == (6, 5, 4)  # (D, H, W) = (k, j, i)
    assert image.array.dtype == np.int16
    assert image.array[2, 3, 1] == data[1, 3, 2]
    assert image.spacing == pytest.approx((3.0, 0.8, 0.5))
    assert image.is_volume and image.extra["axcodes"] == "RAS"
    d, h, w = 2, 3, 1
    np.testing.assert_allclose(image.orientation @ [d, h, w, 1], AFFINE @ [w, h, d, 1])


def test_nifti2_and_scaling(tmp_path: Path) -> None:
    header = nib.Nifti2Header()
    img = nib.Nifti2Image(_volume(), AFFINE, header)
    img.header.set_slope_inter(2.0, -1.0)
    nib.save(img, tmp_path / "v2.nii")
    image = read_image(tmp_path / "v2.nii")
    assert image.extra["nifti_version"] == 2
    np.testing.assert_allclose(image.array, np.transpose(_volume() * 2.0 - 1.0, (2, 1, 0)))


def test_size_checked_from_header(tmp_path: Path) -> None:
    path = tmp_path / "big.nii.gz"
    nib.save(nib.Nifti1Image(_volume(), AFFINE), path)
    with pytest.raises(ImageTooLargeError) as info:
        read_image(path, max_pixels=100)
    assert "big.nii.gz" in str(info.value)


@pytest.mark.parametrize("name", ["cut.nii", "cut.nii.gz"])
def test_truncated(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((30, 30, 30)).astype(np.float32), AFFINE), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="is truncated") as info:
        read_image(path)
    assert name in str(info.value)


def test_4d_series_refused(tmp_path: Path) -> None:
    path = tmp_path / "fmri.nii"
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), AFFINE), path)
    with pytest.raises(ImageReadError, match="4D") as info:
        read_image(path)
    assert "fmri.nii" in str(info.value)


def test_gzipped_non_nifti_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "notes.nii.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"hello" * 200)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert "notes.nii.gz" in str(info.value)
