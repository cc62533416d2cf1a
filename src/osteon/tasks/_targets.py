"""Reading task targets from Manifest columns, with errors that name the column and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd

from osteon.data.manifest import Manifest
from osteon.errors import ConfigError


def target_column(manifest: Manifest, requested: str | None, default: str) -> str:
    """The column to learn; raises ConfigError listing the columns when it is missing or empty."""
    column = requested or default
    if column not in manifest.frame or manifest.frame[column].isna().all():
        usable = [c for c in manifest.columns if manifest.frame[c].notna().any() and c not in ("image",)]
        raise ConfigError(
            f"{manifest.name}: no values in column {column!r} to learn from. "
            f"Columns with values: {', '.join(usable)}. Fix: pass --target COLUMN."
        )
    return column


def as_label_strings(values: pd.Series) -> pd.Series:
    """Labels as strings; integral floats (``1.0`` from a CSV) become ``"1"``; missing stays NA."""

    def norm(v: object) -> object:
        if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return values.map(norm).astype("string")


def sorted_classes(labels: pd.Series) -> list[str]:
    """Class names in a stable order: numeric order when all are integers, else alphabetical."""
    names = sorted(set(labels.dropna()))
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return names


def patient_groups(frame: pd.DataFrame) -> np.ndarray | None:
    """Patient ids of a predictions table for the bootstrap, or ``None`` (resample images) when any is missing."""
    if "patient_id" in frame and frame["patient_id"].notna().all():
        return frame["patient_id"].to_numpy()
    return None
