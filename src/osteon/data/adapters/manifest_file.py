"""A Manifest saved by :meth:`Manifest.save` (``.csv`` with an ``image`` column, or ``.parquet``) → Manifest.

This is the round trip of Osteon's own format: ``load_dataset("manifest.csv")`` equals
``Manifest.load("manifest.csv")``; image paths resolve against the file's folder.

A *folder* that holds ``manifest.csv`` (or ``manifest.parquet``) is this format too: that is what
``osteon data phantom`` and exports write (``images/``, ``masks/`` beside the table), and the table is
the dataset's own description. Without this rule the folder would look like two class folders
(``images`` and ``masks``), and a model would learn to tell images from masks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from osteon.data.adapters._base import DatasetAdapter
from osteon.data.manifest import Manifest
from osteon.errors import DatasetFormatError

NAME = "manifest"
LAYOUT = (
    "a Manifest written by Manifest.save: a .csv with an 'image' column, or a .parquet "
    "(or a folder holding manifest.csv / manifest.parquet)"
)
#: File names a dataset folder's own Manifest may have, in order of preference.
FOLDER_MANIFESTS = ("manifest.csv", "manifest.parquet")


def folder_manifest(path: Path) -> Path | None:
    """The Manifest file of a dataset folder (:data:`FOLDER_MANIFESTS`), or None when it has none."""
    if not path.is_dir():
        return None
    return next((path / name for name in FOLDER_MANIFESTS if _is_manifest_file(path / name)), None)


def detect(path: Path) -> bool:
    """True for a ``.parquet`` file, a ``.csv`` whose header has an ``image`` column, or a folder holding one."""
    if path.is_dir():
        return folder_manifest(path) is not None
    return _is_manifest_file(path)


def _is_manifest_file(path: Path) -> bool:
    if not path.is_file():
        return False
    if path.suffix.lower() == ".parquet":
        return True
    if path.suffix.lower() != ".csv":
        return False
    try:
        return "image" in pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def load(path: Path) -> Manifest:
    """Read the Manifest file (or a folder's ``manifest.csv``) with :meth:`Manifest.load`.

    A folder's Manifest is named after the folder (the file is always called ``manifest``).

    Raises:
        DatasetFormatError: ``path`` is not a .csv/.parquet file nor a folder holding one.
        ManifestError: the table breaks the Manifest schema.
    """
    if path.is_dir():
        found = folder_manifest(path)
        if found is None:
            raise DatasetFormatError(
                f"{path}: not a Manifest file, and the folder holds no {' or '.join(FOLDER_MANIFESTS)} with an "
                f"'image' column; expected {LAYOUT}."
            )
        manifest = Manifest.load(found)
        manifest.name = path.resolve().name
        return manifest
    if not (path.is_file() and path.suffix.lower() in (".csv", ".parquet")):
        raise DatasetFormatError(f"{path}: not a Manifest file; expected {LAYOUT}.")
    return Manifest.load(path)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)
