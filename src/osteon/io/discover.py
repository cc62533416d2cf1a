"""Find the image files under folders by their content, and account for every file left out.

:func:`find_images` walks folders (following symbolic links, but never twice into the same folder, so a
link loop cannot crash or hang the walk) and keeps each file whose first bytes are a format
:func:`osteon.io.read_image` reads (:func:`osteon.io.formats.detect_format`): a DICOM named by its UID
(``1.2.840.113619.2.55.3``, no ``.dcm``) is an image, a ``notes.txt`` is not. Every file or folder that is
not kept is listed in :attr:`ImageScan.skipped` with the reason, so a caller can say "10 predicted, 1
skipped (not an image: notes.txt)" instead of dropping files silently.

Example:
    >>> scan = find_images([Path("study")])  # doctest: +SKIP
    >>> len(scan.files), scan.skipped_by_reason()  # doctest: +SKIP
    (11, {'not a supported image': 1})
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from osteon.errors import ImageReadError, UnsupportedFormatError
from osteon.io.formats import detect_format

#: Suffixes that say "this is meant to be an image": such a file is kept even when its content is broken,
#: so that the reader's error (truncated, empty, not an image ...) reaches the user as an unreadable input.
CLAIMED_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".gz", ".bmp"})

#: Reasons a file or folder is skipped (the keys of :meth:`ImageScan.skipped_by_reason`).
NOT_AN_IMAGE = "not a supported image"
VIDEO = "a video (predict it on its own: one input that is the video file)"
EMPTY = "empty file"
UNREADABLE = "cannot be opened"
BROKEN_LINK = "broken symbolic link"
LINK_LOOP = "symbolic-link loop (folder already being walked)"
SEEN_FOLDER = "folder already walked through another link"
HIDDEN = "hidden"
FOLDER_ERROR = "folder cannot be listed"

_VIDEO_BRANDS = (b"ftyp", b"moov", b"mdat", b"wide", b"free")


@dataclass(frozen=True)
class Skipped:
    """A file or folder left out of a scan: ``path`` as walked, and ``reason`` (one of the module's reasons)."""

    path: Path
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class ImageScan:
    """What :func:`find_images` found: image ``files`` in walk order, and everything ``skipped`` with why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skipped_by_reason(self) -> dict[str, int]:
        """Number of skipped entries per reason, most frequent first."""
        return dict(Counter(s.reason for s in self.skipped).most_common())

    def summary(self, *, examples: int = 2) -> str:
        """One line: ``"3 skipped: 2 not a supported image (e.g. a.txt, b.csv); 1 broken symbolic link (e.g. x)"``."""
        if not self.skipped:
            return "0 skipped"
        parts = []
        for reason, count in self.skipped_by_reason().items():
            names = [s.path.name or str(s.path) for s in self.skipped if s.reason == reason][:examples]
            parts.append(f"{count} {reason} (e.g. {', '.join(names)})")
        return f"{len(self.skipped)} skipped: " + "; ".join(parts)


def find_images(inputs: Iterable[str | os.PathLike[str]], *, include_hidden: bool = False) -> ImageScan:
    """Image files among ``inputs``: files as given, plus every image file under each folder.

    Folders are walked depth first in sorted order; symbolic links to folders are followed once (a folder
    reached again, by a loop or a second link, is skipped with the reason). Files given explicitly are kept
    whatever their content (a missing or broken one is reported by the reader). A file found in a folder is
    kept when its content is a supported image, or when its suffix claims one
    (:data:`CLAIMED_IMAGE_SUFFIXES`) so that a corrupt ``scan.png`` is reported as unreadable rather than
    skipped; anything else is skipped with the reason.

    Args:
        inputs: Files and folders.
        include_hidden: Also walk hidden files and folders (names starting with ``.``); skipped by default.

    Returns:
        The scan: files to read, and the skipped entries with their reasons.
    """
    scan = ImageScan()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            _walk(path, scan, include_hidden=include_hidden)
        elif _is_link_loop(path):  # resolving it would raise RuntimeError("Symlink loop ...") downstream
            scan.skipped.append(Skipped(path, LINK_LOOP, f"-> {os.readlink(path)}"))
        else:
            scan.files.append(path)  # a missing or broken file is reported by the reader, not here
    return scan


def _walk(root: Path, scan: ImageScan, *, include_hidden: bool) -> None:
    active: list[tuple[int, int]] = []  # folders on the current path (a link back to one of them is a loop)
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path) -> None:
        try:
            info = folder.stat()
        except OSError as err:
            scan.skipped.append(Skipped(folder, FOLDER_ERROR, err.strerror or str(err)))
            return
        key = (info.st_dev, info.st_ino)
        if key in active:
            scan.skipped.append(Skipped(folder, LINK_LOOP, f"points back to {os.path.realpath(folder)}"))
            return
        if key in seen:
            scan.skipped.append(Skipped(folder, SEEN_FOLDER, f"{os.path.realpath(folder)}"))
            return
        seen.add(key)
        active.append(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            scan.skipped.append(Skipped(folder, FOLDER_ERROR, err.strerror or str(err)))
            active.pop()
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith(".") and not include_hidden:
                scan.skipped.append(Skipped(path, HIDDEN))
                continue
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError as err:  # ELOOP on a link that points to itself
                scan.skipped.append(Skipped(path, LINK_LOOP if entry.is_symlink() else UNREADABLE, str(err)))
                continue
            if is_dir:
                visit(path)
            else:
                _classify_file(path, entry.is_symlink(), scan)
        active.pop()

    visit(root)


def _is_link_loop(path: Path) -> bool:
    """True for a symbolic link whose chain of targets comes back to itself (``stat`` fails with ELOOP)."""
    if not os.path.islink(path):
        return False
    try:
        os.stat(path)
    except OSError as err:
        return err.errno == errno.ELOOP
    return False


def _classify_file(path: Path, is_link: bool, scan: ImageScan) -> None:
    if is_link and not path.exists():
        reason = LINK_LOOP if _is_link_loop(path) else BROKEN_LINK
        scan.skipped.append(Skipped(path, reason, f"-> {os.readlink(path)}"))
        return
    try:
        detect_format(path)
    except UnsupportedFormatError as err:
        if path.suffix.lower() in CLAIMED_IMAGE_SUFFIXES:
            scan.files.append(path)  # named as an image: the reader will say what is wrong with it
        elif _looks_like_video(path):
            scan.skipped.append(Skipped(path, VIDEO))
        else:
            scan.skipped.append(Skipped(path, NOT_AN_IMAGE, err.problem))
        return
    except ImageReadError as err:
        if path.suffix.lower() in CLAIMED_IMAGE_SUFFIXES:
            scan.files.append(path)
        else:
            scan.skipped.append(Skipped(path, EMPTY if "empty" in err.problem else UNREADABLE, err.problem))
        return
    scan.files.append(path)


def _looks_like_video(path: Path) -> bool:
    """MP4/MOV/M4V (ISO base media box at byte 4), AVI (RIFF....AVI), Matroska/WebM (EBML) or MPEG-PS."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return (
        head[4:8] in _VIDEO_BRANDS
        or (head[:4] == b"RIFF" and head[8:11] == b"AVI")
        or head.startswith(b"\x1a\x45\xdf\xa3")
        or head.startswith(b"\x00\x00\x01\xba")
    )
