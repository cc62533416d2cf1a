"""Read images (DICOM, NIfTI, PNG/JPEG/TIFF) into :class:`~osteon.io.image.Image` records.

Example:
    >>> from osteon.io import read_image, to_grayscale_float  # doctest: +SKIP
    >>> image = read_image("study/IM0001.dcm")                   # doctest: +SKIP
    >>> plane = to_grayscale_float(image)  # float32 (H, W) in [0, 1]  # doctest: +SKIP
"""

from osteon.io.dicom import read_dicom
from osteon.io.formats import DEFAULT_MAX_PIXELS, ImageFormat, detect_format
from osteon.io.image import Image
from osteon.io.nifti import read_nifti
from osteon.io.normalize import is_colour, to_grayscale_float, to_rgb_float
from osteon.io.raster import read_raster
from osteon.io.reader import read_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Image",
    "ImageFormat",
    "detect_format",
    "is_colour",
    "read_dicom",
    "read_image",
    "read_nifti",
    "read_raster",
    "to_grayscale_float",
    "to_rgb_float",
]
