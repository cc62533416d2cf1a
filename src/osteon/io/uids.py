"""DICOM identity of image files: Study, Series and SOP Instance UIDs read from the header only.

Predictions of DICOM images carry these UIDs so that a result can be traced back to the object in a PACS
(``osteon predict`` writes them as CSV columns; the PACS bridge links its reports to them). Files that are
not DICOM (PNG, NIfTI, ...) or that cannot be parsed get empty strings: reading UIDs never fails a batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from osteon.io.formats import ImageFormat, detect_format

#: Output column → DICOM keyword, in the order the columns are written.
UID_COLUMNS: dict[str, str] = {
    "study_instance_uid": "StudyInstanceUID",
    "series_instance_uid": "SeriesInstanceUID",
    "sop_instance_uid": "SOPInstanceUID",
}


def read_uids(path: str | os.PathLike[str]) -> dict[str, str]:
    """The three UIDs of one file (``""`` each where the file is not DICOM or lacks the element).

    Only the header up to the SOP Instance UID is parsed (no pixel data), so this is cheap for any file size.
    """
    empty = dict.fromkeys(UID_COLUMNS, "")
    try:
        if detect_format(Path(path)) is not ImageFormat.DICOM:
            return empty
    except Exception:  # missing or unreadable file: the predictor reports it with its error
        return empty
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=list(UID_COLUMNS.values()))
    except Exception:  # a broken header: the row's prediction error says why
        return empty
    return {column: str(ds.get(keyword, "") or "") for column, keyword in UID_COLUMNS.items()}


def add_uid_columns(frame: pd.DataFrame, paths: Iterable[str | os.PathLike[str]] | None = None) -> pd.DataFrame:
    """``frame`` with :data:`UID_COLUMNS` added after ``image`` (read from ``paths``, default its ``image`` column).

    Columns that are already present are left as they are (a Manifest from a DICOM adapter may carry them).
    """
    todo = [c for c in UID_COLUMNS if c not in frame.columns]
    if not todo:
        return frame
    files = list(paths) if paths is not None else [Path(str(p)) for p in frame["image"]]
    records = [read_uids(p) for p in files]
    at = list(frame.columns).index("image") + 1 if "image" in frame.columns else len(frame.columns)
    out = frame.copy()
    for offset, column in enumerate(todo):
        out.insert(at + offset, column, [r[column] for r in records])
    return out
