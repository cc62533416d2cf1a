"""Read a DICOM file into an :class:`~osteon.io.image.Image` through pydicom 3.

Compressed transfer syntaxes are decoded by pydicom's pixel-data plugins. Core dependencies (all
permissively licensed) cover JPEG 2000 and HTJ2K (pylibjpeg-openjpeg), RLE (pylibjpeg-rle, pydicom)
and 8-bit JPEG baseline/extended (Pillow). JPEG Lossless, 12-bit JPEG Extended and JPEG-LS need an
extra (:data:`DECODER_EXTRAS`): ``osteon[dicom-codecs]`` (python-gdcm, Apache-2.0; pyjpegls, MIT) or
``osteon[dicom-gpl]`` (pylibjpeg-libjpeg, GPL-3.0: it is not a core dependency so that Osteon, Apache-2.0,
can be redistributed without the GPL). The reader's error for such a file names the extras.

What the reader does, in order:

1. parse the header (large elements such as Pixel Data are read lazily);
2. refuse files without pixel data and files whose declared Rows × Columns × Frames × Samples
   exceed ``max_pixels`` *before* decoding anything;
3. decode (YBR is converted to RGB by pydicom 3; PALETTE COLOR is expanded to RGB);
4. for grayscale, apply the modality LUT (Rescale Slope/Intercept or Modality LUT Sequence), then
   invert MONOCHROME1 so that higher values are always brighter. The window centre is moved with
   the inversion; the VOI LUT itself is *not* applied (the raw range is kept) but centre/width are
   recorded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder
from pydicom.uid import UID

from osteon.errors import ImageReadError, ImageTooLargeError
from osteon.io.formats import DEFAULT_MAX_PIXELS, check_declared_size
from osteon.io.image import Image

_T = TypeVar("_T")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DEFER_SIZE = "16 MB"  # elements larger than this (the pixel data) are read only when decoded

#: How to get a decoder for the transfer syntaxes that no core dependency decodes (or only in part:
#: Pillow reads 8-bit JPEG Extended, not 12-bit): the extras, permissive first.
_EXTRAS_FIX = (
    "pip install 'osteon[dicom-codecs]' (python-gdcm, Apache-2.0, and pyjpegls, MIT), or "
    "'osteon[dicom-gpl]' (pylibjpeg-libjpeg, GPL-3.0: a redistributed bundle that includes it becomes GPL)"
)
#: Transfer syntax UID → what to install when no decoder for it is available.
DECODER_EXTRAS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": _EXTRAS_FIX,
    "1.2.840.10008.1.2.4.51": _EXTRAS_FIX,
    "1.2.840.10008.1.2.4.57": _EXTRAS_FIX,
    "1.2.840.10008.1.2.4.70": _EXTRAS_FIX,
    "1.2.840.10008.1.2.4.80": _EXTRAS_FIX,
    "1.2.840.10008.1.2.4.81": _EXTRAS_FIX,
    "1.2.840.10008.1.2.4.90": "pip install pylibjpeg pylibjpeg-openjpeg (core dependencies of osteon: reinstall it)",
    "1.2.840.10008.1.2.4.91": "pip install pylibjpeg pylibjpeg-openjpeg (core dependencies of osteon: reinstall it)",
    "1.2.840.10008.1.2.4.201": "pip install pylibjpeg pylibjpeg-openjpeg (core dependencies of osteon: reinstall it)",
    "1.2.840.10008.1.2.4.202": "pip install pylibjpeg pylibjpeg-openjpeg (core dependencies of osteon: reinstall it)",
    "1.2.840.10008.1.2.4.203": "pip install pylibjpeg pylibjpeg-openjpeg (core dependencies of osteon: reinstall it)",
    "1.2.840.10008.1.2.5": "pip install pylibjpeg pylibjpeg-rle (core dependencies of osteon: reinstall it)",
}
#: Plugins of the extras; a decode failure of a syntax in :data:`DECODER_EXTRAS` without one of them suggests them.
_EXTRA_PLUGINS = frozenset({"gdcm", "pyjpegls", "pylibjpeg"})


def read_dicom(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read one DICOM file (single- or multi-frame) into an :class:`Image`.

    Args:
        path: A DICOM file (Part 10 with preamble, or an old file without one).
        max_pixels: Most samples (rows × columns × frames × samples per pixel) to decode.

    Returns:
        An ``Image`` whose ``array`` is ``(H, W)``, ``(H, W, 3)``, ``(F, H, W)`` or ``(F, H, W, 3)``.
        Grayscale arrays carry the modality LUT (e.g. Hounsfield units for CT) and are never
        MONOCHROME1: integral results keep the stored dtype when the values fit (else the narrowest of
        int16/int32), non-integer rescales give float32. ``spacing`` is ``(row, col)`` mm from PixelSpacing, else
        ImagerPixelSpacing; multi-frame adds the slice spacing in front (NaN when not stated).
        ``extra`` holds ``transfer_syntax``, ``number_of_frames``, ``value_range`` (the range the
        declared bit depth can take after the modality LUT, used by
        :func:`~osteon.io.normalize.to_grayscale_float`), ``voi_lut_function`` and ``sop_class``.

    Raises:
        ImageReadError: not parseable as DICOM, no pixel data (structured report, presentation
            state ...), missing Rows/Columns, no decoder for the transfer syntax, truncated or corrupt
            pixel data.
        ImageTooLargeError: the declared size exceeds ``max_pixels``.

    Example:
        >>> image = read_dicom("CT_small.dcm")  # doctest: +SKIP
        >>> image.array.dtype, image.modality   # doctest: +SKIP
        (dtype('int16'), 'CT')
    """
    path = Path(path)
    ds, parse_warnings = _parse(path)
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        _raise_if_truncated(path, ds, parse_warnings)
        sop = _sop_class_name(ds)
        raise ImageReadError(
            path,
            f"has no pixel data (it may be a structured report / presentation state; SOP class: {sop}).",
            "pass an image object (CR, DX, CT, MR ...) instead; non-image objects are skipped by the DICOM adapter.",
        )
    rows, cols, frames, samples = _declared_shape(path, ds)
    check_declared_size(
        path, rows * cols * frames * samples, max_pixels, shape=f"{rows}×{cols}×{frames} frames×{samples} samples"
    )
    transfer_syntax = _transfer_syntax(path, ds)
    raw = _decode(path, ds, transfer_syntax)
    if raw.size == 0 or raw.shape[-2 if samples == 1 else -3 :][:2] != (rows, cols):
        raise ImageReadError(path, f"decoded to shape {raw.shape}, which does not match Rows={rows}, Columns={cols}.")

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    bits_stored = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    window_center = _first_float(_lookup(ds, "WindowCenter", "FrameVOILUTSequence"))
    window_width = _first_float(_lookup(ds, "WindowWidth", "FrameVOILUTSequence"))
    extra: dict[str, object] = {
        "format": "dicom",
        "transfer_syntax": str(transfer_syntax),
        "number_of_frames": frames,
        "sop_class": _sop_class_name(ds),
        "photometric_source": photometric,
    }
    voi_function = _lookup(ds, "VOILUTFunction", "FrameVOILUTSequence")
    if voi_function:
        extra["voi_lut_function"] = str(voi_function).upper()

    if photometric == "PALETTE COLOR":
        array = _checked(path, "palette colour LUT", lambda: apply_color_lut(raw, ds))
        bits_stored = int(array.dtype.itemsize * 8)
        photometric = "RGB"
    elif samples == 3:
        array = np.ascontiguousarray(raw)
        photometric = "RGB"
    elif samples == 1 and photometric in ("MONOCHROME1", "MONOCHROME2"):
        array, value_range = _checked(path, "modality LUT / rescale", lambda: _grayscale(ds, raw, bits_stored))
        if photometric == "MONOCHROME1":
            inversion = value_range[0] + value_range[1]
            if array.dtype.kind == "f":
                array = (inversion - array).astype(np.float32)
            else:
                array = _fit_dtype(inversion - array.astype(np.int64), array.dtype)
            if window_center is not None:
                window_center = inversion - window_center
            extra["monochrome1_inverted"] = True
        extra["value_range"] = value_range
        photometric = "MONOCHROME2"
    else:
        raise ImageReadError(
            path,
            f"has photometric interpretation {photometric!r} with {samples} samples per pixel, which is not supported.",
            "convert it to MONOCHROME2 or RGB (e.g. with dcmtk's dcmconv / gdcmconv).",
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageReadError(path, "has non-finite (NaN/inf) pixel values.", "check the float pixel data.")

    return Image(
        array=array,
        path=path,
        spacing=_spacing(ds, frames),
        modality=_text(ds, "Modality"),
        photometric=photometric,
        bits_stored=bits_stored,
        window_center=window_center,
        window_width=window_width,
        laterality=_laterality(ds),
        view_position=_text(ds, "ViewPosition"),
        body_part=_text(ds, "BodyPartExamined"),
        patient_id=_text(ds, "PatientID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        extra=extra,
    )


def _parse(path: Path) -> tuple[Dataset, list[str]]:
    """The dataset, and the warnings pydicom gave while parsing (they reveal a file cut short)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, defer_size=_DEFER_SIZE, force=True)
        return ds, [" ".join(str(w.message).split()) for w in caught]
    except (InvalidDicomError, EOFError) as err:
        raise ImageReadError(
            path, f"could not be parsed as DICOM ({err}); it is truncated or corrupt.", "re-export the file."
        ) from err
    except Exception as err:  # pydicom raises many types for broken headers
        raise ImageReadError(
            path, f"could not be parsed as DICOM ({type(err).__name__}: {err}).", "re-export the file."
        ) from err


def _raise_if_truncated(path: Path, ds: Dataset, parse_warnings: list[str]) -> None:
    """A file without pixel data that was cut short (or declares an image) is truncated, not a non-image object.

    pydicom drops an encapsulated (JPEG, JPEG 2000, RLE) Pixel Data element that the file ends inside, with
    the warning "End of file reached before delimiter"; a file cut just before the element leaves an image
    header (Rows/Columns) without pixels; a file cut inside its header stops parsing silently, leaving an
    object whose SOP class is an image storage class. All are reported as truncated, naming the file.
    """
    cut = [w for w in parse_warnings if "end of file" in w.lower() or "expected" in w.lower()]
    declares_image = "Rows" in ds and "Columns" in ds
    sop = _sop_class_name(ds)
    image_class = "Image Storage" in sop
    if not (cut or declares_image or image_class):
        return
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    encoding = f" ({UID(str(syntax)).name})" if syntax else ""
    if cut:
        evidence = f"pydicom: {cut[0]}"
    elif declares_image:
        evidence = f"the header declares a {ds.Rows}×{ds.Columns} image"
    else:
        evidence = f"its SOP class is {sop}, an image object"
    raise ImageReadError(
        path,
        f"is truncated or corrupt: the file ends before or inside its pixel data{encoding}, so no image can be "
        f"decoded ({evidence}; file size {path.stat().st_size:,} bytes).",
        "re-export or re-download the file (an interrupted copy or transfer leaves files like this).",
    )


def _declared_shape(path: Path, ds: Dataset) -> tuple[int, int, int, int]:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
    except AttributeError as err:
        raise ImageReadError(
            path, f"has pixel data but no Rows/Columns ({err}).", "the header is incomplete; re-export the file."
        ) from err
    except (TypeError, ValueError) as err:
        raise ImageReadError(
            path, f"has an invalid Rows/Columns/NumberOfFrames/SamplesPerPixel value ({err}).", "fix the header."
        ) from err
    if min(rows, cols, frames, samples) < 1:
        raise ImageReadError(path, f"declares an empty image (Rows={rows}, Columns={cols}, frames={frames}).")
    return rows, cols, frames, samples


def _transfer_syntax(path: Path, ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None:
        uid = _guess_transfer_syntax(ds)
        if uid is None:
            raise ImageReadError(
                path,
                "has no Transfer Syntax UID in its file meta, so its pixel data cannot be decoded.",
                "add (0002,0010) TransferSyntaxUID (e.g. with dcmtk's dcmodify) or re-export the file.",
            )
        ds.file_meta = meta if meta is not None else pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = uid
    uid = UID(str(uid))
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as err:
        raise ImageReadError(
            path,
            f"uses transfer syntax {uid.name} ({uid}), which pydicom {pydicom.__version__} cannot decode.",
            "transcode it to an uncompressed or JPEG/JPEG 2000 syntax (e.g. dcmtk's dcmconv, gdcmconv --raw).",
        ) from err
    if not decoder.is_available:
        fix = DECODER_EXTRAS.get(str(uid), _EXTRAS_FIX)
        missing = "; ".join(decoder.missing_dependencies)
        raise ImageReadError(
            path,
            f"uses transfer syntax {uid.name} ({uid}) and no decoder for it is installed ({missing}).",
            f"{fix}.",
        )
    return uid


def _extras_hint(transfer_syntax: UID) -> str:
    """The extras to try when a syntax they cover failed to decode with the core plugins only (e.g. Pillow)."""
    if DECODER_EXTRAS.get(str(transfer_syntax)) != _EXTRAS_FIX:
        return ""
    try:
        plugins = set(get_decoder(transfer_syntax).available_plugins)
    except (NotImplementedError, AttributeError):
        return ""
    # pydicom lists pylibjpeg for JPEG syntaxes only when pylibjpeg-libjpeg is installed
    return "" if plugins & _EXTRA_PLUGINS else f" If it is 12-bit or lossless JPEG, {_EXTRAS_FIX}."


def _guess_transfer_syntax(ds: Dataset) -> UID | None:
    """Uncompressed syntax from how pydicom parsed a file without meta; None for encapsulated data."""
    implicit, little = getattr(ds, "original_encoding", (None, None))
    element = ds.get("PixelData")
    if implicit is None or little is None or (element is not None and element.is_undefined_length):
        return None
    if implicit:
        return pydicom.uid.ImplicitVRLittleEndian
    return pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian


def _decode(path: Path, ds: Dataset, transfer_syntax: UID) -> np.ndarray:
    try:
        return np.asarray(ds.pixel_array)
    except MemoryError as err:
        raise ImageTooLargeError(path, "ran out of memory while decoding.", "pass a smaller max_pixels.") from err
    except Exception as err:  # decoder plugins raise RuntimeError/ValueError/... for broken data
        message = str(err).replace("\n", " ").strip()
        if "less than expected" in message or "truncated" in message.lower():
            raise ImageReadError(
                path,
                f"is truncated: its pixel data is shorter than Rows × Columns × frames declare ({message}).",
                "re-export or re-download the file.",
            ) from err
        raise ImageReadError(
            path,
            f"pixel data could not be decoded ({transfer_syntax.name}; {type(err).__name__}: {message[:400]}).",
            "the file may be corrupt; try re-exporting it, or transcode it with dcmtk/gdcm."
            + _extras_hint(transfer_syntax),
        ) from err


def _checked(path: Path, step: str, function: Callable[[], _T]) -> _T:
    """Run one post-decoding step; a broken header value becomes an ImageReadError naming the step."""
    try:
        return function()
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as err:
        raise ImageReadError(
            path, f"has an invalid {step} in its header ({type(err).__name__}: {err}).", "fix or remove those tags."
        ) from err


def _grayscale(ds: Dataset, raw: np.ndarray, bits_stored: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Apply the modality LUT; return the array and the range the declared bit depth maps to."""
    if raw.dtype.kind == "f":
        finite = raw[np.isfinite(raw)]
        bounds = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        return raw.astype(np.float32, copy=False), bounds
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    bits = max(1, min(bits_stored, raw.dtype.itemsize * 8))
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    has_lut = bool(ds.get("ModalityLUTSequence"))
    has_rescale = "RescaleSlope" in ds and "RescaleIntercept" in ds
    if not (has_lut or has_rescale):
        return raw.astype(raw.dtype.newbyteorder("="), copy=False), (float(low), float(high))
    probe = np.arange(low, high + 1) if has_lut and high - low < 2**20 else np.array([low, high])
    mapped = apply_modality_lut(probe, ds)
    value_range = (float(np.min(mapped)), float(np.max(mapped)))
    array = apply_modality_lut(raw, ds)
    integral = has_lut or all(float(v).is_integer() for v in (ds.RescaleSlope, ds.RescaleIntercept))
    if integral:
        return _fit_dtype(np.rint(array) if array.dtype.kind == "f" else array, raw.dtype), value_range
    return array.astype(np.float32), value_range


def _fit_dtype(array: np.ndarray, source: np.dtype) -> np.ndarray:
    """Cast integral values to the source's dtype when they fit, else the narrowest of int16/int32/int64.

    Non-integral floats become float32. The choice looks at the data (not the declared range), so
    a typical CT (12 significant bits, intercept -1024) stays int16 whatever its Bits Stored says.
    """
    if array.dtype.kind == "f" and not np.array_equal(array, np.rint(array)):
        return array.astype(np.float32)
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    candidates = [source.newbyteorder("=")] if source.kind in "iu" else []
    for dtype in [*candidates, np.dtype(np.int16), np.dtype(np.int32)]:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return array.astype(dtype)
    return array.astype(np.int64)


def _lookup(ds: Dataset, keyword: str, macro: str) -> Any:
    """An attribute from the top level, else from the first functional-group item (enhanced multi-frame)."""
    if keyword in ds:
        return ds.get(keyword)
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(group)
        if items and macro in items[0] and items[0].get(macro):
            value = items[0].get(macro)[0].get(keyword)
            if value is not None:
                return value
    return None


def _first_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _spacing(ds: Dataset, frames: int) -> tuple[float, ...] | None:
    pixel = _lookup(ds, "PixelSpacing", "PixelMeasuresSequence") or ds.get("ImagerPixelSpacing")
    try:
        row, col = (float(v) for v in pixel)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if not (row > 0 and col > 0):
        return None
    if frames == 1:
        return (row, col)
    between = _first_float(_lookup(ds, "SpacingBetweenSlices", "PixelMeasuresSequence"))
    thickness = _first_float(_lookup(ds, "SliceThickness", "PixelMeasuresSequence"))
    slice_spacing = between or thickness or math.nan
    return (slice_spacing, row, col)


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _laterality(ds: Dataset) -> str | None:
    value = (_text(ds, "ImageLaterality") or _text(ds, "Laterality") or "").upper()
    return value if value in ("L", "R") else None


def _sop_class_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    return UID(str(uid)).name if uid else "unknown"
