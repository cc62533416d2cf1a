"""A folder tree of DICOM files → Manifest, one row per file (or per series), from the headers only.

Files are recognised by the DICOM preamble (``DICM`` at byte 128), whatever their extension, and read
with ``pydicom.dcmread(stop_before_pixels=True)``: pixel data is never decoded here.

Columns (DICOM keyword in brackets): ``patient_id`` (PatientID), ``study_id`` (StudyInstanceUID),
``series_uid`` (SeriesInstanceUID), ``view`` (ViewPosition), ``laterality`` (ImageLaterality, else
Laterality), ``body_part`` (BodyPartExamined), ``modality``, ``sex`` (PatientSex), ``age`` in years
(PatientAge ``"045Y"`` → 45.0, ``"006M"`` → 0.5, weeks and days likewise), ``width`` (Columns),
``height`` (Rows), ``spacing_row`` / ``spacing_col`` in mm (PixelSpacing, else ImagerPixelSpacing),
``instance_number``, ``n_frames`` (NumberOfFrames, 1 when absent).

With ``per_series=True`` there is one row per SeriesInstanceUID (files without one are grouped by
folder): ``image`` is the series folder when that folder holds only this series, else the series' first
file (by InstanceNumber, then name); ``n_slices`` counts its files; the other columns come from the
first file.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

from osteon.data.adapters._base import DatasetAdapter, is_dicom_file, relative_posix, walk_files
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError, DatasetFormatError

NAME = "dicom_dir"
LAYOUT = "a folder tree of DICOM files (any names; recognised by 'DICM' at byte 128)"
DETECT_MAX_FILES = 200
AGE_UNITS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}
STRING_FIELDS = {
    "patient_id": ("PatientID",),
    "study_id": ("StudyInstanceUID",),
    "series_uid": ("SeriesInstanceUID",),
    "view": ("ViewPosition",),
    "laterality": ("ImageLaterality", "Laterality"),
    "body_part": ("BodyPartExamined",),
    "modality": ("Modality",),
    "sex": ("PatientSex",),
}


def detect(path: Path) -> bool:
    """True for a folder where one of the first :data:`DETECT_MAX_FILES` files is a DICOM file."""
    if not path.is_dir():
        return False
    return any(is_dicom_file(p) for p in itertools.islice(walk_files(path), DETECT_MAX_FILES))


def load(path: Path, *, per_series: bool = False) -> Manifest:
    """Read the headers of every DICOM file under ``path``.

    Args:
        path: Root of the DICOM tree.
        per_series: One row per series instead of one per file (adds ``n_slices``).

    Returns:
        Manifest with ``image`` (relative to ``path``) and the header columns listed in the module
        docstring; root = ``path``.

    Raises:
        DatasetFormatError: ``path`` is not a folder or holds no DICOM file.
        ConfigError: ``per_series`` is not a bool.

    Warns:
        UserWarning: for files with a DICOM preamble whose header cannot be parsed (kept with NA
            columns, so that ``osteon data check`` reports them).
    """
    if not isinstance(per_series, bool):
        raise ConfigError(f"per_series must be True or False, got {per_series!r}.")
    if not path.is_dir():
        raise DatasetFormatError(f"{path}: not a folder. Fix: pass the root folder of the DICOM files.")
    files = [p for p in walk_files(path) if is_dicom_file(p)]
    if not files:
        raise DatasetFormatError(
            f"{path}: no DICOM files (none has 'DICM' at byte 128). Fix: pass the folder of the .dcm files, "
            "or another --format."
        )
    unreadable: list[Path] = []
    rows = [_header_row(p, path, unreadable) for p in files]
    if unreadable:
        warnings.warn(
            f"{path}: {len(unreadable)} DICOM file(s) have unreadable headers and get empty columns, "
            f"e.g. {unreadable[0]}.",
            stacklevel=3,
        )
    frame = _typed(pd.DataFrame(rows))
    if per_series:
        frame = _per_series(frame)
    return Manifest(frame, root=path, name=path.resolve().name)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)


def parse_age(value: object) -> float | None:
    """DICOM Age String (``nnnD|W|M|Y``) → years; None when absent or malformed.

    Example:
        >>> parse_age("045Y"), parse_age("006M")
        (45.0, 0.5)
    """
    text = str(value).strip().upper() if value is not None else ""
    if len(text) < 2 or text[-1] not in AGE_UNITS or not text[:-1].isdigit():
        return None
    return round(int(text[:-1]) * AGE_UNITS[text[-1]], 4)


def _header_row(file: Path, root: Path, unreadable: list[Path]) -> dict[str, Any]:
    row: dict[str, Any] = {"image": relative_posix(file, root)}
    try:
        ds = pydicom.dcmread(file, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError):
        unreadable.append(file)
        return row
    for column, keywords in STRING_FIELDS.items():
        values = (str(ds.get(k)).strip() for k in keywords if ds.get(k) not in (None, ""))
        row[column] = next((v for v in values if v), None)
    row["age"] = parse_age(ds.get("PatientAge"))
    row["width"] = _int(ds.get("Columns"))
    row["height"] = _int(ds.get("Rows"))
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if spacing is not None and len(spacing) == 2:
        row["spacing_row"], row["spacing_col"] = float(spacing[0]), float(spacing[1])
    row["instance_number"] = _int(ds.get("InstanceNumber"))
    row["n_frames"] = _int(ds.get("NumberOfFrames")) or 1
    return row


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in STRING_FIELDS:
        frame[column] = frame[column].astype("string") if column in frame else pd.array([pd.NA] * len(frame), "string")
    for column in ("width", "height", "instance_number", "n_frames"):
        frame[column] = pd.array(frame[column] if column in frame else [None] * len(frame), dtype="Int64")
    for column in ("age", "spacing_row", "spacing_col"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else float("nan")
    order = [
        "image",
        *STRING_FIELDS,
        "age",
        "width",
        "height",
        "spacing_row",
        "spacing_col",
        "instance_number",
        "n_frames",
    ]
    return frame[order]


def _per_series(frame: pd.DataFrame) -> pd.DataFrame:
    folder = frame["image"].map(lambda p: Path(p).parent.as_posix())
    key = frame["series_uid"].fillna("folder:" + folder)
    frame = frame.assign(_key=key, _folder=folder)
    series_per_folder = frame.groupby("_folder")["_key"].nunique()
    rows = []
    for _, group in frame.groupby("_key", sort=False):
        group = group.sort_values(["instance_number", "image"], na_position="last")
        first = group.iloc[0].to_dict()
        folders = set(group["_folder"])
        if len(folders) == 1 and series_per_folder[first["_folder"]] == 1 and first["_folder"] != ".":
            first["image"] = first["_folder"]
        first["n_slices"] = len(group)
        rows.append(first)
    out = pd.DataFrame(rows).drop(columns=["_key", "_folder", "instance_number"])
    out["n_slices"] = out["n_slices"].astype("Int64")
    return _retype(out)


def _retype(frame: pd.DataFrame) -> pd.DataFrame:
    for column in STRING_FIELDS:
        frame[column] = frame[column].astype("string")
    for column in ("width", "height", "n_frames"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _int(value: object) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
