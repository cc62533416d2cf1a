"""One folder per class → Manifest: ``[split/]label/*.{png,jpg,jpeg,dcm,tif,tiff,bmp}``.

``label`` is the class folder's name (``"0"`` .. ``"4"`` for the knee KL crops). When the first level
is ``train`` / ``val`` / ``valid`` / ``validation`` / ``test``, it gives ``split`` (``valid``, ``validation``
→ ``val``); otherwise there is no split. Image files anywhere else are ignored with a warning.

Patient ids come from the file stem through ``patient_pattern``, a regular expression with a named
group ``patient_id`` (and optionally ``laterality``), searched in the stem (anchor it with ``^``/``$``).
Default (None): if *every* stem matches :data:`OAI_PATTERN` (7-digit OAI patient id + ``L``/``R``, the
knee KL datasets derived from the Osteoarthritis Initiative), that pattern is used; otherwise there are
no patient ids and the Manifest warns.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from osteon.data.adapters._base import (
    IMAGE_SUFFIXES,
    DatasetAdapter,
    list_images,
    relative_posix,
    split_name,
    walk_files,
)
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError, DatasetFormatError

NAME = "class_folder"
LAYOUT = "[train|val|test/]<label>/*.png|jpg|jpeg|dcm|tif (one folder per class, at least two classes)"
OAI_PATTERN = r"^(?P<patient_id>\d{7})(?P<laterality>[LR])$"


def _candidate_folders(path: Path) -> list[tuple[str | None, Path]]:
    """Every ``(split, label folder)`` pair of a class-folder layout, with or without images."""
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if any(split_name(d.name) for d in subdirs):
        pairs: list[tuple[str | None, Path]] = [
            (split_name(d.name), label) for d in subdirs if split_name(d.name) for label in sorted(d.iterdir())
        ]
    else:
        pairs = [(None, d) for d in subdirs]
    return [(split, folder) for split, folder in pairs if folder.is_dir() and not folder.name.startswith(".")]


def _class_folders(path: Path) -> list[tuple[str | None, Path]]:
    """``(split, label folder)`` pairs of a class-folder layout that hold at least one image."""
    return [(split, folder) for split, folder in _candidate_folders(path) if list_images(folder)]


def detect(path: Path) -> bool:
    """True when ``path`` holds at least two class folders with images (directly or under split folders)."""
    if not path.is_dir():
        return False
    return len({folder.name for _, folder in _class_folders(path)}) >= 2


def load(path: Path, *, patient_pattern: str | None = None) -> Manifest:
    """Read a class-per-folder dataset.

    Args:
        path: The dataset root.
        patient_pattern: Regex with a named group ``patient_id`` (optionally ``laterality``) searched in
            each file stem; every stem must match. None: :data:`OAI_PATTERN` when every stem matches it,
            else no patient ids.

    Returns:
        Manifest with ``image``, ``label``, ``split`` (NA without split folders) and, when a pattern
        applies, ``patient_id`` and ``laterality``; root = ``path``.

    Raises:
        ConfigError: ``patient_pattern`` is not a valid regex or has no ``patient_id`` group.
        DatasetFormatError: no class folder with images, or a stem the explicit pattern does not match.
    """
    if not path.is_dir():
        raise DatasetFormatError(f"{path}: not a folder. Fix: pass the folder holding the class folders.")
    folders = _class_folders(path)
    if not folders:
        raise DatasetFormatError(
            f"{path}: no class folders with images; expected {LAYOUT}. "
            "Fix: arrange the images so, or pick another --format."
        )
    files = [(p, split, folder.name) for split, folder in folders for p in list_images(folder)]
    images = [relative_posix(p, path) for p, _, _ in files]
    _warn_empty(path, folders)
    _warn_ignored(path, set(images))
    frame = pd.DataFrame(
        {"image": images, "split": [s for _, s, _ in files], "label": [lab for _, _, lab in files]}, dtype="string"
    )
    ids = _patient_ids([p.stem for p, _, _ in files], patient_pattern, path)
    if ids is not None:
        frame.insert(1, "patient_id", ids["patient_id"].array)
        if "laterality" in ids:
            frame["laterality"] = ids["laterality"].array
    return Manifest(frame, root=path, name=path.resolve().name)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)


def _patient_ids(stems: list[str], pattern: str | None, path: Path) -> pd.DataFrame | None:
    if pattern is None:
        auto = re.compile(OAI_PATTERN)
        if not stems or not all(auto.search(s) for s in stems):
            return None
        regex = auto
    else:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"patient_pattern {pattern!r} is not a valid regular expression ({exc}).") from exc
        if "patient_id" not in regex.groupindex:
            raise ConfigError(
                f"patient_pattern {pattern!r} has no named group 'patient_id'. "
                r"Fix: e.g. '^(?P<patient_id>\d+)_' for stems like '12345_left'."
            )
    groups = []
    for stem in stems:
        match = regex.search(stem)
        if match is None:
            raise DatasetFormatError(
                f"{path}: file stem {stem!r} does not match patient_pattern {pattern!r}. "
                "Fix: widen the pattern so that every file name yields a patient id."
            )
        groups.append({k: v for k, v in match.groupdict().items() if k in ("patient_id", "laterality")})
    return pd.DataFrame(groups).astype("string")


def _warn_empty(path: Path, kept: list[tuple[str | None, Path]]) -> None:
    """Warn, naming them, about class folders without images: their class is missing from the Manifest."""
    used = {folder for _, folder in kept}
    empty = [relative_posix(folder, path) for _, folder in _candidate_folders(path) if folder not in used]
    if empty:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        warnings.warn(
            f"{path}: {len(empty)} class folder(s) hold no images ({suffixes}) and were left out, so their class is "
            f"missing from the dataset: {', '.join(empty)}. Fix: add the images, or remove the folder if the class "
            "does not exist.",
            stacklevel=3,
        )


def _warn_ignored(path: Path, kept: set[str]) -> None:
    ignored = [
        rel
        for p in walk_files(path)
        if p.suffix.lower() in IMAGE_SUFFIXES and (rel := relative_posix(p, path)) not in kept
    ]
    if ignored:
        warnings.warn(
            f"{path}: {len(ignored)} image file(s) outside the [split/]label/ layout were ignored, e.g. {ignored[0]}.",
            stacklevel=3,
        )
