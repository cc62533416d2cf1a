"""DICOM reading: pydicom's own test files, modality LUT, MONOCHROME1, YBR, bad files, real DDH DICOMs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from osteon.errors import ImageReadError, ImageTooLargeError
from osteon.io import read_dicom, read_image, to_grayscale_float

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _pydicom_files_with_pixels() -> list[Path]:
    files = []
    for name in get_testdata_files():
        path = Path(name)
        if not path.is_file():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True, specific_tags=list(_PIXEL_KEYWORDS))
        except Exception:
            continue
        if any(keyword in ds for keyword in _PIXEL_KEYWORDS):
            files.append(path)
    return sorted(files)


PYDICOM_FILES = _pydicom_files_with_pixels()


def _declared(path: Path) -> tuple[int, int, int, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    return int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames") or 1), int(ds.get("SamplesPerPixel") or 1)


def test_pydicom_test_data_is_found() -> None:
    assert len(PYDICOM_FILES) >= 50, f"only {len(PYDICOM_FILES)} pydicom test files with pixel data found"


@pytest.mark.parametrize("path", PYDICOM_FILES, ids=lambda p: p.name)
def test_pydicom_test_file_reads_or_raises_our_error(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # several files are deliberately odd and pydicom warns about them
        try:
            image = read_image(path)
        except ImageReadError as err:
            assert path.name in str(err)
            assert err.problem
            return
    rows, cols, frames, samples = _declared(path)
    assert samples in (1, 3)
    assert image.height == rows and image.width == cols
    expected = (rows, cols) if frames == 1 else (frames, rows, cols)
    color = image.photometric == "RGB"
    assert image.array.shape == (*expected, 3) if color else expected
    assert image.is_volume == (frames > 1)
    if image.array.dtype.kind == "f":
        assert np.isfinite(image.array).all()
    assert image.photometric in ("MONOCHROME2", "RGB")
    assert image.extra["transfer_syntax"]


def test_uncompressed_and_compressed_copies_agree() -> None:
    reference = read_image(get_testdata_file("MR_small.dcm")).array
    for name in ("MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_expb.dcm"):
        np.testing.assert_array_equal(read_image(get_testdata_file(name)).array, reference, err_msg=name)


def test_ct_rescale_slope_intercept_applied() -> None:
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array.astype(np.float64)
    image = read_image(path)
    np.testing.assert_array_equal(image.array, raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert float(ds.RescaleIntercept) != 0  # the test must exercise a real rescale
    assert image.array.dtype.kind == "i"
    assert image.modality == "CT"
    assert image.spacing == tuple(float(v) for v in ds.PixelSpacing)
    assert image.study_uid == ds.StudyInstanceUID and image.series_uid == ds.SeriesInstanceUID
    assert image.patient_id == ds.PatientID


def test_non_integer_rescale_gives_float32() -> None:
    path = _find("6154")
    ds = pydicom.dcmread(path)
    image = read_image(path)
    assert image.array.dtype == np.float32
    assert float(ds.RescaleSlope) != int(float(ds.RescaleSlope))


def _find(name: str) -> str:
    return next(str(p) for p in PYDICOM_FILES if p.name == name)


def test_monochrome1_is_inverted_against_pydicom_raw() -> None:
    path = _find("6154")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    raw = ds.pixel_array.astype(np.float64)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    image = read_image(path)
    assert image.photometric == "MONOCHROME2" and image.extra["monochrome1_inverted"] is True
    # inversion maps the declared range [intercept, (2**bits - 1) * slope + intercept] onto itself
    inversion = 2 * intercept + (2 ** int(ds.BitsStored) - 1) * slope
    np.testing.assert_allclose(image.array, inversion - (raw * slope + intercept), rtol=1e-5)
    # order reversed: the darkest raw pixel becomes the brightest
    assert np.argmax(image.array) == np.argmin(raw)
    # the window moves with the inversion, keeping its width
    assert image.window_center == pytest.approx(inversion - float(ds.WindowCenter))
    assert image.window_width == pytest.approx(float(ds.WindowWidth))


def test_window_first_value_kept() -> None:
    path = get_testdata_file("J2K_pixelrep_mismatch.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    image = read_image(path)
    assert image.window_center == float(ds.WindowCenter[0])
    assert image.window_width == float(ds.WindowWidth[0])
    raw_range = float(image.array.max()) - float(image.array.min())
    assert raw_range > image.window_width  # raw range kept, VOI not applied


def test_ybr_converted_to_rgb() -> None:
    path = get_testdata_file("SC_ybr_full_422_uncompressed.dcm")
    image = read_image(path)
    ybr = pixel_array(path, as_rgb=False).astype(np.float64)
    rgb_copy = read_image(get_testdata_file("SC_rgb_rle.dcm")).array.astype(np.float64)
    assert image.photometric == "RGB" and image.extra["photometric_source"] == "YBR_FULL_422"
    assert np.abs(image.array - rgb_copy).mean() < 2.0
    assert np.abs(ybr - rgb_copy).mean() > 20.0


def test_multiframe_shape_and_spacing() -> None:
    image = read_image(get_testdata_file("examples_ybr_color.dcm"))
    assert image.array.shape == (30, 240, 320, 3)
    assert image.is_volume
    image = read_image(get_testdata_file("rtdose.dcm"))
    assert image.array.shape == (15, 10, 10) and image.extra["number_of_frames"] == 15
    assert image.spacing is not None and len(image.spacing) == 3


def test_palette_colour_expanded_to_rgb() -> None:
    image = read_image(get_testdata_file("examples_palette.dcm"))
    assert image.photometric == "RGB" and image.array.shape == (350, 800, 3)


def test_truncated_pixel_data() -> None:
    with pytest.raises(ImageReadError, match="is truncated") as info:
        read_image(get_testdata_file("MR_truncated.dcm"))
    assert "MR_truncated.dcm" in str(info.value)


def _tiny_dataset(with_pixels: bool) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22" if not with_pixels else "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = "P001"
    ds.Modality = "SR" if not with_pixels else "DX"
    if with_pixels:
        pixels = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.ImagerPixelSpacing = [0.15, 0.2]
        ds.ImageLaterality = "R"
        ds.ViewPosition = "AP"
        ds.BodyPartExamined = "HAND"
        ds.PixelData = pixels.tobytes()
    return ds


def test_dicom_without_pixel_data(tmp_path: Path) -> None:
    path = tmp_path / "report.dcm"
    _tiny_dataset(with_pixels=False).save_as(path, enforce_file_format=True)
    with pytest.raises(ImageReadError, match="has no pixel data") as info:
        read_image(path)
    assert "report.dcm" in str(info.value) and "structured report" in str(info.value)


def test_synthetic_dx_metadata(tmp_path: Path) -> None:
    path = tmp_path / "dx.dcm"
    _tiny_dataset(with_pixels=True).save_as(path, enforce_file_format=True)
    image = read_dicom(path)
    np.testing.assert_array_equal(image.array, np.arange(12).reshape(3, 4) * 100)
    assert image.array.dtype == np.uint16 and image.bits_stored == 12
    assert image.spacing == (0.15, 0.2)
    assert (image.laterality, image.view_position, image.body_part, image.modality) == ("R", "AP", "HAND", "DX")
    assert image.extra["value_range"] == (0.0, 4095.0)
    np.testing.assert_allclose(to_grayscale_float(image), np.arange(12).reshape(3, 4) * 100 / 4095, rtol=1e-6)


def test_declared_size_checked_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.dcm"
    ds = _tiny_dataset(with_pixels=True)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 1000  # pixel data is still 24 bytes
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageTooLargeError, match="max_pixels") as info:
        read_image(path)
    assert "bomb.dcm" in str(info.value)
    with pytest.raises(ImageTooLargeError):
        read_image(get_testdata_file("CT_small.dcm"), max_pixels=100)


def test_unsupported_transfer_syntax_names_it(tmp_path: Path) -> None:
    path = tmp_path / "video.dcm"
    ds = _tiny_dataset(with_pixels=True)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"  # MPEG-4 AVC/H.264: no pydicom decoder
    ds.PixelData = encapsulate([b"\x00" * 8])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"H\.264") as info:
        read_image(path)
    assert "video.dcm" in str(info.value) and info.value.fix


def test_missing_decoder_names_syntax_and_package(monkeypatch: pytest.MonkeyPatch) -> None:
    class _NoPlugin:
        is_available = False
        missing_dependencies = ("pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-openjpeg>=2.0",)

    monkeypatch.setattr("osteon.io.dicom.get_decoder", lambda uid: _NoPlugin())
    with pytest.raises(ImageReadError, match="JPEG 2000") as info:
        read_image(get_testdata_file("MR_small_jp2klossless.dcm"))
    assert "MR_small_jp2klossless.dcm" in str(info.value)
    assert "pip install pylibjpeg pylibjpeg-openjpeg" in str(info.value)


@pytest.mark.shared_data
def test_ddh_pelvis_jpeg2000_rgb(shared_data: Path) -> None:
    files = sorted((shared_data / "ddh_pelvis_xray_dicom" / "dicoms" / "xray").glob("*.dcm"))
    assert len(files) == 10
    for path in files:
        image = read_image(path)
        assert image.array.shape == (331, 331, 3) and image.array.dtype == np.uint8, path.name
        assert image.photometric == "RGB" and image.modality == "DX"
        assert image.extra["transfer_syntax"] == "1.2.840.10008.1.2.4.91"
        assert image.array.std() > 10  # a real radiograph, not a blank decode
