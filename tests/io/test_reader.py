"""read_image: content-based format detection and one osteon error (with the file name) for every bad input."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from osteon.errors import ImageReadError, ImageTooLargeError, UnsupportedFormatError
from osteon.io import ImageFormat, detect_format, read_image


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _noise(height: int = 64, width: int = 80) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (height, width), dtype=np.uint8)


def test_png_named_jpg_reads(tmp_path: Path) -> None:
    path = tmp_path / "really_png.jpg"
    pixels = _noise()
    path.write_bytes(_png_bytes(pixels))
    assert detect_format(path) is ImageFormat.PNG
    image = read_image(path)
    np.testing.assert_array_equal(image.array, pixels)
    assert image.extra["format"] == "png"


def test_text_named_png_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("patient list\nnot an image\n")
    with pytest.raises(UnsupportedFormatError, match="plain text") as info:
        read_image(path)
    assert "notes.png" in str(info.value) and info.value.fix


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.touch()
    with pytest.raises(ImageReadError, match="empty") as info:
        read_image(path)
    assert "empty.dcm" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist") as info:
        read_image(tmp_path / "nowhere.png")
    assert "nowhere.png" in str(info.value)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "series_folder"
    folder.mkdir()
    with pytest.raises(ImageReadError, match="directory") as info:
        read_image(folder)
    assert "series_folder" in str(info.value)


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _jpeg_bytes(_noise(200, 300))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="is truncated") as info:
        read_image(path)
    assert "cut.jpg" in str(info.value)
    with pytest.raises(ImageReadError, match="is truncated"):
        read_image(path, size_hint=32)


@pytest.mark.parametrize("fraction", [0.5, 0.05])
def test_truncated_png(tmp_path: Path, fraction: float) -> None:
    data = _png_bytes(_noise(200, 300))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ImageReadError, match="truncated") as info:
        read_image(path)
    assert "cut.png" in str(info.value)


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width × height`` but whose IDAT holds a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def test_png_declaring_huge_size(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_declaring(100_000, 100_000))
    with pytest.raises(ImageTooLargeError) as info:
        read_image(path)
    assert "bomb.png" in str(info.value)


def test_max_pixels_checked_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    path.write_bytes(_png_bytes(_noise(64, 80)))
    with pytest.raises(ImageTooLargeError, match="max_pixels") as info:
        read_image(path, max_pixels=1000)
    assert "small.png" in str(info.value) and "5,120" in str(info.value)
    assert read_image(path, max_pixels=64 * 80).array.shape == (64, 80)


def test_unknown_binary_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnsupportedFormatError) as info:
        read_image(path)
    assert "blob.bin" in str(info.value)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_bad_options_raise_value_error(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(_png_bytes(_noise()))
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(path, max_pixels=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size_hint"):
        read_image(path, size_hint=bad)  # type: ignore[arg-type]


def test_detects_every_format_by_content(tmp_path: Path) -> None:
    import nibabel as nib
    import tifffile

    tifffile.imwrite(tmp_path / "t.bin", _noise())
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4), np.int16), np.eye(4)), tmp_path / "v.nii.gz")
    (tmp_path / "v.nii.gz").rename(tmp_path / "v.dat")
    (tmp_path / "j.bin").write_bytes(_jpeg_bytes(_noise()))
    assert detect_format(tmp_path / "t.bin") is ImageFormat.TIFF
    assert detect_format(tmp_path / "v.dat") is ImageFormat.NIFTI
    assert detect_format(tmp_path / "j.bin") is ImageFormat.JPEG
    assert read_image(tmp_path / "v.dat").array.shape == (4, 3, 2)
