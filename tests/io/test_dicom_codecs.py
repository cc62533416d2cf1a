"""DICOM decoders and their licences, and truncated compressed files (issue #10: D6 and the GPL dependency)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from osteon.errors import ImageReadError
from osteon.io import dicom, read_image

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
PIXELS = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7 % 4096).astype(np.uint16)


def _dataset(transfer_syntax: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "CR", 64, 64, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    return ds


def _jpeg2000_file(path: Path) -> Path:
    ds = _dataset("1.2.840.10008.1.2.1")
    ds.PixelData = PIXELS.tobytes()
    ds.compress(JPEG2000Lossless)  # pylibjpeg-openjpeg, a core dependency, encodes it
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("keep", [0.97, 0.5, 300])  # inside the pixel data; inside the header (300 bytes)
def test_truncated_jpeg2000_dicom_is_reported_as_truncated(tmp_path: Path, keep: float) -> None:
    whole = _jpeg2000_file(tmp_path / "whole.dcm")
    np.testing.assert_array_equal(read_image(whole).array, PIXELS)
    cut = tmp_path / "IM0001.dcm"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    with pytest.raises(ImageReadError, match="is truncated or corrupt") as info:
        read_image(cut)
    message = str(info.value)
    assert "IM0001.dcm" in message and "has no pixel data" not in message  # before: "has no pixel data"
    assert "re-download" in message


def test_structured_report_still_has_no_pixel_data(tmp_path: Path) -> None:
    ds = _dataset("1.2.840.10008.1.2.1")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(ds, keyword)
    ds.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    with pytest.raises(ImageReadError, match="has no pixel data"):
        read_image(tmp_path / "sr.dcm")


def test_gpl_decoder_is_an_extra_not_a_core_dependency() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    core = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    assert "pylibjpeg-libjpeg" not in core  # GPL-3.0 would bind every redistributor of this Apache-2.0 package
    assert any(dep.startswith("pylibjpeg-libjpeg") for dep in extras["dicom-gpl"])
    assert {dep.split(">")[0] for dep in extras["dicom-codecs"]} == {"python-gdcm", "pyjpegls"}
    assert "pylibjpeg-openjpeg" in core and "pylibjpeg-rle" in core
    assert not any("libjpeg" in dep for dep in extras["dev"])  # the tests run on the permissive codecs


class _NoDecoder:
    """Stands in for a pydicom decoder whose plugins are all missing (as without the extras)."""

    is_available = False
    available_plugins = ()
    missing_dependencies = ("gdcm - requires gdcm>=3.0.10", "pylibjpeg - requires pylibjpeg-libjpeg>=2.1")


@pytest.mark.parametrize("syntax", [JPEGLSLossless, JPEGLosslessSV1])
def test_error_names_the_extras_that_decode_the_file(
    tmp_path: Path, syntax: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _dataset(syntax)
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(64) + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "lossless.dcm"
    ds.save_as(path, enforce_file_format=True)
    monkeypatch.setattr(dicom, "get_decoder", lambda uid: _NoDecoder())
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert "lossless.dcm" in message and "no decoder for it is installed" in message
    assert "osteon[dicom-codecs]" in message and "osteon[dicom-gpl]" in message and "GPL-3.0" in message


def test_jpeg_ls_decodes_with_the_permissive_codecs(tmp_path: Path) -> None:
    pytest.importorskip("jpeg_ls", reason="pyjpegls (extra dicom-codecs) encodes the test file")
    ds = _dataset("1.2.840.10008.1.2.1")
    ds.PixelData = PIXELS.tobytes()
    ds.compress(JPEGLSLossless)
    ds.save_as(tmp_path / "jls.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(read_image(tmp_path / "jls.dcm").array, PIXELS)
