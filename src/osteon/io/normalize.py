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
       applied with the DICOM formula named by ``extra["voi_lut_function"]``: ``LINEAR`` (default,
       PS3.3 C.11.2.1.2.1), ``LINEAR_EXACT`` or ``SIGMOID``.
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


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM VOI LUT functions, output range [0, 1] (PS3.3 C.11.2.1.2)."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return (values - center) / width + 0.5
    if width <= 1:  # LINEAR with width 1 is a threshold at centre - 0.5
        return (values > center - 0.5).astype(np.float64)
    return (values - (center - 0.5)) / (width - 1) + 0.5


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
