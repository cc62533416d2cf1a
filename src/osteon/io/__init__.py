"""Read images (DICOM, NIfTI, PNG/JPEG/TIFF) into :class:`~osteon.io.image.Image` records."""

from osteon.io.image import Image

__all__ = ["Image"]
