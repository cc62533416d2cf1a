"""Read PNG, JPEG and TIFF files into :class:`~osteon.io.image.Image` records (Pillow, tifffile).

Depth is kept: 16-bit grayscale PNG/TIFF (Pillow mode ``I;16``) becomes ``uint16``, 32-bit
integer ``int32`` and float ``float32``. Colour becomes ``(H, W, 3)`` RGB (alpha dropped,
CMYK/YCbCr converted), two-channel gray+alpha becomes gray, and palette images become gray when
the palette is gray and RGB otherwise. Pillow's 16-bit-per-channel RGB support is limited (it
reduces such PNGs to 8 bit); TIFFs Pillow cannot open (multi-page stacks, 16-bit RGB, exotic
compressions) are read with tifffile.

The header is read first and its declared size checked against ``max_pixels`` before any pixel
is decoded; Pillow's own ``DecompressionBombError`` is reported as :class:`ImageTooLargeError`.
Truncated files raise :class:`ImageReadError`; ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from osteon.errors import ImageReadError, ImageTooLargeError
from osteon.io.formats import DEFAULT_MAX_PIXELS, ImageFormat, check_declared_size
from osteon.io.image import Image

_PIL_FAILURES = (OSError, EOFError, SyntaxError, ValueError, UnidentifiedImageError, struct.error)
_TO_RGB = {"RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_TO_GRAY = {"1", "LA", "La"}
_UINT16_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


def read_raster(
    path: str | Path,
    *,
    image_format: ImageFormat,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    size_hint: int | None = None,
) -> Image:
    """Read a PNG, JPEG or TIFF file.

    Args:
        path: The file.
        image_format: Its format as found by :func:`~osteon.io.formats.detect_format`.
        max_pixels: Most samples (height × width × channels) to decode.
        size_hint: For JPEG only: decode at the smallest of the reduced scales 1/2, 1/4, 1/8 whose
            short side is still ``>= size_hint`` (Pillow's draft mode: much faster for large files).

    Returns:
        An ``Image`` with ``array`` ``(H, W)`` or ``(H, W, 3)`` (``(F, H, W)`` for a multi-page
        TIFF stack). ``spacing`` ``(row, col)`` in mm only when the file states a metric
        resolution (PNG pHYs per metre, JFIF dots/cm, TIFF ResolutionUnit = cm), else ``None``.
        ``extra`` holds ``format``, ``original_size`` (H, W) of the stored image and, when a
        ``size_hint`` was given for a JPEG, ``decode_scale`` (decoded / stored size, e.g. 0.125);
        the spacing is then that of the decoded pixels.

    Raises:
        ImageReadError: truncated or corrupt file.
        ImageTooLargeError: declared size above ``max_pixels`` or above Pillow's own limit.
    """
    path = Path(path)
    try:
        pil = PILImage.open(path)
    except PILImage.DecompressionBombError as err:
        raise _pillow_bomb(path, err) from err
    except _PIL_FAILURES as err:
        if image_format is ImageFormat.TIFF:
            return _read_tiff(path, max_pixels=max_pixels)
        raise ImageReadError(
            path,
            f"starts like a {image_format.value.upper()} file but its header cannot be parsed ({err}); "
            "it is truncated or corrupt.",
            "re-export or re-download the file.",
        ) from err
    with pil:
        width, height = pil.size
        bands = len(pil.getbands())
        check_declared_size(path, width * height * bands, max_pixels, shape=f"{height}×{width}×{bands} channels")
        if image_format is ImageFormat.TIFF and _pillow_loses_tiff(pil):
            return _read_tiff(path, max_pixels=max_pixels)
        spacing = _pil_spacing(pil, image_format)
        extra: dict[str, object] = {"format": image_format.value, "original_size": (height, width)}
        if image_format is ImageFormat.PNG:
            extra.update(_png_depth_note(path, pil))
        if size_hint is not None and image_format is ImageFormat.JPEG:
            _draft(pil, size_hint)
        try:
            pil.load()
        except PILImage.DecompressionBombError as err:
            raise _pillow_bomb(path, err) from err
        except _PIL_FAILURES as err:
            if isinstance(err, EOFError) or "truncated" in str(err).lower():
                raise ImageReadError(
                    path,
                    f"is truncated: the {image_format.value.upper()} data ends early (Pillow: {err}).",
                    "re-download or re-export the file, or drop it from the dataset (`osteon data check` lists them).",
                ) from err
            if image_format is ImageFormat.TIFF:
                return _read_tiff(path, max_pixels=max_pixels)
            raise ImageReadError(
                path, f"could not be decoded as {image_format.value.upper()} ({err}).", "re-export the file."
            ) from err
        if size_hint is not None and image_format is ImageFormat.JPEG:
            new_width, new_height = pil.size
            extra["decode_scale"] = 1.0 / max(1, round(width / new_width))
            if spacing is not None:
                spacing = (spacing[0] * height / new_height, spacing[1] * width / new_width)
        orientation = pil.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation != 1:
            # Annotations (e.g. FracAtlas COCO sizes) describe the image as displayed, so rotate like a viewer.
            pil = ImageOps.exif_transpose(pil)
            extra["exif_orientation"] = int(orientation)
            if orientation in (5, 6, 7, 8):
                extra["original_size"] = (width, height)
        array, photometric, bits = _pil_to_array(pil)
    return Image(array=array, path=path, spacing=spacing, photometric=photometric, bits_stored=bits, extra=extra)


_EXIF_ORIENTATION = 0x0112


def _pillow_loses_tiff(pil: PILImage.Image) -> bool:
    """Pillow reads only the first page of a stack and reduces >8-bit colour to 8 bit: use tifffile then."""
    bits = pil.tag_v2.get(258, (8,)) if hasattr(pil, "tag_v2") else (8,)
    bits = bits if isinstance(bits, tuple) else (bits,)
    return getattr(pil, "n_frames", 1) > 1 or (len(bits) >= 3 and max(bits) > 8)


def _png_depth_note(path: Path, pil: PILImage.Image) -> dict[str, object]:
    """Pillow decodes 16-bit-per-channel colour PNGs at 8 bit; say so in ``extra``."""
    with open(path, "rb") as handle:
        ihdr = handle.read(26)
    bit_depth, colour_type = ihdr[24], ihdr[25]
    if bit_depth == 16 and colour_type in (2, 6) and pil.mode.startswith("RGB"):
        return {"stored_bits": 16, "decoded_bits": 8}
    return {}


def _draft(pil: PILImage.Image, size_hint: int) -> None:
    """Ask the JPEG decoder for the smallest DCT scale whose short side stays >= size_hint."""
    width, height = pil.size
    short = min(width, height)
    if size_hint >= short:
        return
    requested = (max(1, math.ceil(width * size_hint / short)), max(1, math.ceil(height * size_hint / short)))
    pil.draft(pil.mode, requested)


def _pil_to_array(pil: PILImage.Image) -> tuple[np.ndarray, str, int]:
    """Array, photometric interpretation and bits per sample for a loaded Pillow image."""
    mode = pil.mode
    if mode in ("P", "PA"):
        mode = "L" if _palette_is_gray(pil) else "RGB"
        pil = pil.convert(mode)
    elif mode in _TO_GRAY:
        pil = pil.convert("L")
    elif mode in _TO_RGB or (mode not in ("L", "RGB", "I", "F") and mode not in _UINT16_MODES):
        pil = pil.convert("RGB")
    array = np.asarray(pil)
    if pil.mode in _UINT16_MODES:
        return array.astype(np.uint16), "MONOCHROME2", 16
    if pil.mode == "RGB":
        return np.ascontiguousarray(array), "RGB", 8
    if pil.mode == "F":
        return array.astype(np.float32), "MONOCHROME2", 32
    if pil.mode == "I":
        return array.astype(np.int32), "MONOCHROME2", 32
    return np.ascontiguousarray(array), "MONOCHROME2", 8


def _palette_is_gray(pil: PILImage.Image) -> bool:
    palette = pil.getpalette("RGB") or []
    triples = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
    used = np.unique(np.asarray(pil)) if triples.size else np.array([], dtype=np.int64)
    used = used[used < len(triples)]
    colours = triples[used]
    return bool(colours.size and (colours == colours[:, :1]).all())


def _pil_spacing(pil: PILImage.Image, image_format: ImageFormat) -> tuple[float, float] | None:
    """(row, col) mm from a metric resolution field, else None (inches and unitless are ignored)."""
    info = pil.info
    if image_format is ImageFormat.PNG:
        dpi = info.get("dpi")  # Pillow fills it only from a pHYs chunk whose unit is the metre
        return _per_mm(dpi[1] / 25.4, dpi[0] / 25.4) if dpi else None
    if image_format is ImageFormat.JPEG:
        density = info.get("jfif_density")
        if info.get("jfif_unit") == 2 and density:  # dots per cm
            return _per_mm(density[1] / 10.0, density[0] / 10.0)
        return None
    tags = getattr(pil, "tag_v2", {})
    if tags.get(296) == 3 and 282 in tags and 283 in tags:  # ResolutionUnit = centimetre
        return _per_mm(float(tags[283]) / 10.0, float(tags[282]) / 10.0)
    return None


def _per_mm(rows_per_mm: float, cols_per_mm: float) -> tuple[float, float] | None:
    if not (rows_per_mm > 0 and cols_per_mm > 0 and math.isfinite(rows_per_mm) and math.isfinite(cols_per_mm)):
        return None
    return (1.0 / rows_per_mm, 1.0 / cols_per_mm)


def _read_tiff(path: Path, *, max_pixels: int) -> Image:
    """TIFFs Pillow cannot read: multi-page stacks, 16-bit RGB, unusual compressions."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes = tuple(series.shape), series.axes
            check_declared_size(path, math.prod(shape), max_pixels, shape="×".join(map(str, shape)) + f" ({axes})")
            array = series.asarray()
            page = tif.pages.first
            spacing = _tiff_spacing(page)
    except (ImageTooLargeError, ImageReadError):
        raise
    except Exception as err:  # tifffile raises TiffFileError, ValueError, OSError ...
        message = str(err)
        truncated = "truncated" in message.lower() or isinstance(err, EOFError)
        raise ImageReadError(
            path,
            ("is truncated" if truncated else "could not be decoded as TIFF") + f" (tifffile: {message}).",
            "re-export the file (e.g. as an uncompressed or LZW TIFF).",
        ) from err
    array, photometric = _tiff_layout(path, array, axes)
    bits = int(array.dtype.itemsize * 8)
    size = array.shape[-3:-1] if photometric == "RGB" else array.shape[-2:]
    extra: dict[str, object] = {"format": "tiff", "original_size": tuple(size), "reader": "tifffile"}
    return Image(array=array, path=path, spacing=spacing, photometric=photometric, bits_stored=bits, extra=extra)


def _tiff_layout(path: Path, array: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Bring a tifffile series to (H, W), (H, W, 3), (F, H, W) or (F, H, W, 3)."""
    keep = [i for i, (axis, n) in enumerate(zip(axes, array.shape, strict=True)) if n > 1 or axis in "YX"]
    array = array.reshape([array.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if "S" in axes:
        array = np.moveaxis(array, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
        if array.shape[-1] in (3, 4):
            rgb = np.ascontiguousarray(array[..., :3])
            if rgb.ndim in (3, 4):
                return rgb, "RGB"
    elif array.ndim in (2, 3):
        return np.ascontiguousarray(array), "MONOCHROME2"
    raise ImageReadError(
        path,
        f"has a TIFF layout Osteon does not read (axes {axes!r}, shape {array.shape}).",
        "save each plane as its own 2D grayscale or RGB TIFF.",
    )


def _tiff_spacing(page: tifffile.TiffPage) -> tuple[float, float] | None:
    tags = page.tags
    unit = tags.get("ResolutionUnit")
    x_res, y_res = tags.get("XResolution"), tags.get("YResolution")
    if unit is None or int(unit.value) != 3 or x_res is None or y_res is None:
        return None
    x_num, x_den = x_res.value
    y_num, y_den = y_res.value
    if not (x_den and y_den):
        return None
    return _per_mm(y_num / y_den / 10.0, x_num / x_den / 10.0)


def _pillow_bomb(path: Path, err: Exception) -> ImageTooLargeError:
    return ImageTooLargeError(
        path,
        f"is larger than Pillow's decompression-bomb limit ({err}).",
        "if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS before reading it.",
    )
