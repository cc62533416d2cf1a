"""One entry point, :func:`read_image`: any supported file → :class:`~osteon.io.image.Image`."""

from __future__ import annotations

from pathlib import Path

from osteon.errors import ImageReadError, ImageTooLargeError, OsteonError
from osteon.io.dicom import read_dicom
from osteon.io.formats import DEFAULT_MAX_PIXELS, ImageFormat, detect_format, validate_max_pixels
from osteon.io.image import Image
from osteon.io.nifti import read_nifti
from osteon.io.raster import read_raster


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, size_hint: int | None = None) -> Image:
    """Read a DICOM, PNG, JPEG, TIFF or NIfTI file, chosen by its content (never its extension).

    Args:
        path: The file.
        max_pixels: Most samples (rows × columns × frames × channels) to decode; the header's
            declared size is checked against it before any pixel is decoded.
        size_hint: The smallest short side the caller needs (e.g. the training input size). For
            JPEG files the decoder may then work at 1/2, 1/4 or 1/8 scale, keeping the short side
            ``>= size_hint``; ``extra["decode_scale"]`` records the factor and ``spacing`` is that
            of the decoded pixels. Other formats ignore it.

    Returns:
        The :class:`Image` (see its docstring for shapes and conventions).

    Raises:
        ImageReadError: missing file, directory, empty, truncated or corrupt file, DICOM without
            pixel data or without a decoder for its transfer syntax.
        UnsupportedFormatError: the content is not a supported format.
        ImageTooLargeError: the declared size exceeds ``max_pixels``.
        ValueError: ``max_pixels`` or ``size_hint`` is not a positive int.

    Example:
        >>> image = read_image("IMG0000019.jpg", size_hint=256)  # doctest: +SKIP
        >>> image.array.shape, image.extra["decode_scale"]        # doctest: +SKIP
        ((360, 288), 0.125)
    """
    validate_max_pixels(max_pixels)
    if size_hint is not None and (isinstance(size_hint, bool) or not isinstance(size_hint, int) or size_hint < 1):
        raise ValueError(f"size_hint must be None or a positive int (pixels of the short side); got {size_hint!r}.")
    path = Path(path)
    image_format = detect_format(path)
    try:
        if image_format is ImageFormat.DICOM:
            return read_dicom(path, max_pixels=max_pixels)
        if image_format is ImageFormat.NIFTI:
            return read_nifti(path, max_pixels=max_pixels)
        return read_raster(path, image_format=image_format, max_pixels=max_pixels, size_hint=size_hint)
    except OsteonError:
        raise
    except MemoryError as err:
        raise ImageTooLargeError(path, "ran out of memory while decoding.", "pass a smaller max_pixels.") from err
    except Exception as err:  # last line of defence: never let a decoder's own exception escape
        raise ImageReadError(
            path,
            f"could not be read as {image_format.value.upper()} ({type(err).__name__}: {err}).",
            "the file may be corrupt; re-export it.",
        ) from err
