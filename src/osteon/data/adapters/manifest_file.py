"""A Manifest saved by :meth:`Manifest.save` (``.csv`` with an ``image`` column, or ``.parquet``) → Manifest.

This is the round trip of Osteon's own format: ``load_dataset("manifest.csv")`` equals
``Manifest.load("manifest.csv")``; image paths resolve against the file's folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from osteon.data.adapters._base import DatasetAdapter
from osteon.data.manifest import Manifest
from osteon.errors import DatasetFormatError

NAME = "manifest"
LAYOUT = "a Manifest written by Manifest.save: a .csv with an 'image' column, or a .parquet"


def detect(path: Path) -> bool:
    """True for a ``.parquet`` file, or a ``.csv`` whose header has an ``image`` column."""
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
    """Read the Manifest file with :meth:`Manifest.load`.

    Raises:
        DatasetFormatError: ``path`` is not a .csv/.parquet file.
        ManifestError: the table breaks the Manifest schema.
    """
    if not (path.is_file() and path.suffix.lower() in (".csv", ".parquet")):
        raise DatasetFormatError(f"{path}: not a Manifest file; expected {LAYOUT}.")
    return Manifest.load(path)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)
