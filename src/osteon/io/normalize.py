"""Turn an :class:`~osteon.io.image.Image` into the float ``[0, 1]`` grayscale plane models train on."""

from __future__ import annotations

import numpy as np

from osteon.io.image import Image

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, the weights Pillow's "L" conversion uses


def to_grayscale_float(image: Image) -> np.ndarray:
    """One 2D image as float32 ``(H, W)`` in ``[0, 1]``, higher = brighter.

    Steps:

    1. RGB ``(H, W, 3)`` → luminance ``0.299 R + 0.587 G + 0.114 B``.
    2. If the image carries a VOI window (``window_center``/``window_width``, grayscale only) it is
       applied by pydicom's :func:`pydicom.pixels.apply_voi_lut` with the DICOM function named by
       ``extra["voi_lut_function"]``: ``LINEAR`` (default, PS3.3 C.11.2.1.2.1; a width below 1 is a
       threshold at ``center - 0.5``), ``LINEAR_EXACT`` or ``SIGMOID``.
    3. Otherwise integer arrays are scaled by their known range: ``extra["value_range"]`` (the DICOM
       reader records the range the declared bit depth takes after the modality LUT), else
       ``[0, 2**bits_stored - 1]``, else the dtype's maximum. Float arrays are min–max scaled
       (a constant image gives zeros).
    4. The result is clipped to ``[0, 1]``.

    Args:
        image: A 2D image (``image.is_volume`` is False).

    Returns:
        ``float32`` array of shape ``(H, W)``.

    Raises:
        ValueError: for volumes / multi-frame images (pick a slice first).

    Example:
        >>> import numpy as np
        >>> from pathlib import Path
        >>> img = Image(np.array([[0, 2048, 4095]], dtype=np.uint16), Path("x.png"), bits_stored=12)
        >>> to_grayscale_float(img).round(3).tolist()
        [[0.0, 0.5, 1.0]]
    """
    if image.is_volume:
        raise ValueError(
            f"{image.path}: to_grayscale_float takes one 2D image, got {image.array.shape[0]} slices/frames of shape "
            f"{image.array.shape}. Select a slice first, e.g. dataclasses.replace(image, array=image.array[i])."
        )
    array = image.array
    rgb = image.photometric == "RGB"
    values = array[..., :3].astype(np.float64) @ _LUMA if rgb else array.astype(np.float64)
    center, width = image.window_center, image.window_width
    if not rgb and center is not None and width is not None and width > 0:
        function = str(image.extra.get("voi_lut_function", "LINEAR")).upper()
        out = _window(values, center, width, function)
    elif array.dtype.kind in "iub":
        low, high = _integer_range(image)
        out = (values - low) / (high - low) if high > low else np.zeros_like(values)
    else:
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        out = (values - low) / (high - low) if high > low else np.zeros_like(values)
        out = np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


#: Output range of the windowing: pydicom maps the window onto the stored bit depth's range; 16 unsigned bits
#: (0 .. 65535) are then divided back to [0, 1].
_VOI_BITS = 16


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM VOI LUT functions (PS3.3 C.11.2.1.2) through :func:`pydicom.pixels.apply_voi_lut`, output in [0, 1].

    The window comes from the :class:`Image` (the DICOM reader moved the centre with a MONOCHROME1
    inversion), so a minimal VOI LUT Module is built for pydicom: centre and width as binary floats (no
    decimal-string rounding), the function, and an unsigned 16-bit output range. ``LINEAR`` needs a width of
    at least 1 in pydicom; a narrower window is the same threshold as width 1 (``values > center - 0.5``).
    """
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_voi_lut

    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"  # PS3.3 C.11.2.1.3: an unknown function is treated as the default
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = _VOI_BITS
    ds.PixelRepresentation = 0
    ds.add_new(0x00281050, "FD", float(center))  # WindowCenter
    ds.add_new(0x00281051, "FD", float(max(width, 1.0)) if function == "LINEAR" else float(width))  # WindowWidth
    ds.VOILUTFunction = function
    out = apply_voi_lut(np.asarray(values, dtype=np.float64), ds, prefer_lut=False)
    return np.asarray(out, dtype=np.float64) / float(2**_VOI_BITS - 1)


def _integer_range(image: Image) -> tuple[float, float]:
    value_range = image.extra.get("value_range")
    if isinstance(value_range, tuple | list) and len(value_range) == 2:
        return float(value_range[0]), float(value_range[1])
    dtype = image.array.dtype
    if dtype.kind == "b":
        return 0.0, 1.0
    dtype_bits = dtype.itemsize * 8
    if image.bits_stored and 0 < image.bits_stored <= dtype_bits:
        return 0.0, float(2**image.bits_stored - 1)
    return 0.0, float(np.iinfo(dtype).max)


def is_colour(image: Image, *, tolerance: int = 0) -> bool:
    """True when ``image`` is RGB and its channels differ anywhere (more than ``tolerance`` grey levels).

    An RGB file whose three channels are equal (a grey radiograph saved as RGB) is not colour. Ultrasound
    screen captures with a few coloured markers are colour: they are read as they are.
    """
    if image.photometric != "RGB" or image.array.ndim != 3:
        return False
    rgb = image.array[..., :3].astype(np.int32 if image.array.dtype.kind in "iub" else np.float64)
    return bool((np.abs(rgb[..., 1:] - rgb[..., :1]) > tolerance).any())


def to_rgb_float(image: Image) -> np.ndarray:
    """One 2D image as float32 ``(3, H, W)`` in ``[0, 1]`` (channels first).

    RGB images are scaled by their bit depth (8-bit: ``/ 255``); grey images go through
    :func:`to_grayscale_float` (window, bit depth) and are repeated on the three channels, so grey and colour
    files can be mixed in one run of a colour model.

    Raises:
        ValueError: for volumes / multi-frame images (pick a slice first).
    """
    if image.photometric != "RGB":
        grey = to_grayscale_float(image)
        return np.repeat(grey[None], 3, axis=0)
    if image.is_volume:
        raise ValueError(f"{image.path}: to_rgb_float takes one 2D image, got shape {image.array.shape}.")
    array = image.array[..., :3]
    if array.dtype.kind in "iub":
        low, high = _integer_range(image)
        out = (array.astype(np.float32) - low) / (high - low) if high > low else np.zeros(array.shape, np.float32)
    else:
        values = array.astype(np.float32)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        out = (values - low) / (high - low) if high > low else np.zeros_like(values)
        out = np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0).transpose(2, 0, 1), dtype=np.float32)
