"""Which image format a file holds, decided from its first bytes (never from its extension).

Also home of the decompression-bomb guard shared by every reader: :data:`DEFAULT_MAX_PIXELS`
and :func:`check_declared_size`.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from enum import StrEnum
from pathlib import Path

from osteon.errors import ImageReadError, ImageTooLargeError, UnsupportedFormatError

DEFAULT_MAX_PIXELS = 2**29
"""Most samples (rows × columns × frames × channels) a reader decodes before refusing: 536,870,912.

Large enough for a 2,048-slice 512×512 CT, a breast tomosynthesis stack (~2,500×1,900×70) or a
23k×23k single-channel image; small enough that one decoded file stays around 1 GiB at 16 bit
(2 GiB as float32 after a non-integer rescale), so a forged header cannot exhaust memory.
"""

_HEAD_BYTES = 544  # enough for DICOM's 128-byte preamble + "DICM" and NIfTI-2's 540-byte header
_SUPPORTED = "DICOM, PNG, JPEG, TIFF and NIfTI (.nii / .nii.gz)"


class ImageFormat(StrEnum):
    """The formats :func:`osteon.io.read_image` reads."""

    DICOM = "dicom"
    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"
    NIFTI = "nifti"


def check_declared_size(path: str | Path, n_samples: int, max_pixels: int, *, shape: str) -> None:
    """Refuse to decode a file whose header declares more samples than ``max_pixels``.

    Args:
        path: The file (for the message).
        n_samples: Declared rows × columns × frames × channels.
        max_pixels: The limit.
        shape: Human-readable declared shape for the message, e.g. ``"2880×2304×1"``.

    Raises:
        ImageTooLargeError: when ``n_samples > max_pixels``.
    """
    if n_samples > max_pixels:
        raise ImageTooLargeError(
            path,
            f"declares {shape} = {n_samples:,} samples, more than the limit of {max_pixels:,} "
            "(decompression-bomb guard; the header may be forged or the image is really this large).",
            "if you trust the file, pass a larger max_pixels, e.g. read_image(path, max_pixels=...).",
        )


def validate_max_pixels(max_pixels: int) -> None:
    """Raise ``ValueError`` unless ``max_pixels`` is a positive int."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int (a count of samples); got {max_pixels!r}.")


def detect_format(path: str | Path) -> ImageFormat:
    """Tell which supported format ``path`` holds from its first bytes.

    Recognised signatures: PNG ``\\x89PNG\\r\\n\\x1a\\n``; JPEG ``FF D8 FF``; TIFF ``II*\\0`` /
    ``MM\\0*`` (and BigTIFF ``II+\\0`` / ``MM\\0+``); DICOM ``DICM`` at byte 128, or, for old files
    without the preamble, a first element in group 0002 or 0008; NIfTI-1/2 by ``sizeof_hdr`` (348 /
    540) plus the magic ``n+1`` / ``n+2``, also inside a gzip stream (``.nii.gz``).

    Args:
        path: A file path.

    Returns:
        The format.

    Raises:
        ImageReadError: the path does not exist, is a directory, is empty or cannot be opened.
        UnsupportedFormatError: the content is none of the supported formats (whatever the extension).

    Example:
        >>> detect_format("scan.jpg")  # doctest: +SKIP
        <ImageFormat.PNG: 'png'>
    """
    path = Path(path)
    head = _read_head(path)
    if head[128:132] == b"DICM":  # first: a DICOM preamble may itself be a TIFF header (dual-personality files)
        return ImageFormat.DICOM
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return ImageFormat.TIFF
    if _looks_like_bare_dicom(head):
        return ImageFormat.DICOM
    if _nifti_version(head) or (head.startswith(b"\x1f\x8b") and _nifti_version(_gunzip_head(path))):
        return ImageFormat.NIFTI
    looks_text = all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64])
    what = "plain text" if looks_text else f"unrecognised bytes {head[:8]!r}"
    raise UnsupportedFormatError(
        path,
        f"is not a supported image: its content starts with {what} (the extension {path.suffix!r} is "
        "ignored; the first bytes decide the format).",
        f"Osteon reads {_SUPPORTED}; check that this is the file you meant, or convert it to one of these.",
    )


def is_gzip(path: str | Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _read_head(path: Path) -> bytes:
    if not path.exists():
        raise ImageReadError(path, "does not exist.", f"check the path (relative paths resolve against {os.getcwd()}).")
    if path.is_dir():
        raise ImageReadError(
            path,
            "is a directory, not an image file.",
            "pass one file; for a DICOM series folder, read its files one by one (e.g. sorted(folder.iterdir())).",
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as err:
        raise ImageReadError(path, f"cannot be opened ({err.strerror or err}).", "check its permissions.") from err
    if not head:
        raise ImageReadError(path, "is empty (0 bytes).", "re-export or re-download the file; it was never written.")
    return head


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A DICOM file without preamble/meta starts with a (0002,xxxx) or (0008,xxxx) element."""
    if len(head) < 8:
        return False
    for fmt in ("<HH", ">HH"):
        group, element = struct.unpack(fmt, head[:4])
        if group in (0x0002, 0x0008) and element < 0x0100:
            vr = head[4:6]
            explicit = vr.isalpha() and vr.isupper()
            implicit_length = struct.unpack(fmt[0] + "I", head[4:8])[0]
            if explicit or implicit_length < 0x1000:
                return True
    return False


def _nifti_version(head: bytes) -> int:
    """1 or 2 for a single-file NIfTI header, else 0."""
    if len(head) >= 348:
        for order in "<>":
            if struct.unpack(order + "i", head[:4])[0] == 348 and head[344:348] == b"n+1\x00":
                return 1
    if len(head) >= 540:
        for order in "<>":
            if struct.unpack(order + "i", head[:4])[0] == 540 and head[4:8] == b"n+2\x00":
                return 2
    return 0


def _gunzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error):
        return b""
