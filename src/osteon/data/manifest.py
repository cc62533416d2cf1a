"""The Manifest: one table, one row per image, that every stage after the adapters reads.

Columns (DESIGN.md §1). Only ``image`` is required; the rest are optional and typed when present:

============== ======== ==========================================================================
column         type     meaning
============== ======== ==========================================================================
image          str      path of the file, relative to ``Manifest.root`` (or absolute)
patient_id     str      patient identifier; splits group by it. Missing → loud warning (leakage)
study_id       str      study identifier
split          str      ``train`` / ``val`` / ``test`` or empty when the source has no split
label          str      class name or grade (``"0"`` .. ``"4"``); multilabel: ``"a|b"``
target         float    a number (bone age, angle ...)
boxes          str      JSON list of ``{"xyxy": [x1, y1, x2, y2], "label": str}``, pixels of the
                        original image, x right / y down, corners inclusive-exclusive
polygons       str      JSON list of ``{"points": [[x, y], ...], "label": str}``, same pixel space
mask           str      path of a label-map image (0 = background), relative to ``root``
width, height  int      image size in pixels when the source states it (annotation checks use it)
age, sex, bmi  ...      covariates; any other column is kept as-is
view           str      projection (AP, LAT, frontal, oblique ...)
laterality     str      ``L`` / ``R``
body_part      str      hand, leg, hip, knee ...
label_<src>    str      the label according to another source (conflict checks compare it to ``label``)
============== ======== ==========================================================================
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from osteon.data.boxes import json_list
from osteon.errors import DatasetFormatError, ManifestError

CORE_COLUMNS = ("image", "patient_id", "study_id", "split", "label", "target")
STRING_COLUMNS = (
    "image",
    "patient_id",
    "study_id",
    "split",
    "label",
    "boxes",
    "polygons",
    "mask",
    "view",
    "laterality",
)
SPLITS = ("train", "val", "test")


class MissingPatientIdWarning(UserWarning):
    """The Manifest has no patient ids: image-level splits can put one patient on both sides."""


class PathOutsideRootWarning(UserWarning):
    """Relative ``image``/``mask`` paths climb out of the dataset root (``../``): the dataset is not self-contained."""


class Manifest:
    """A validated table of images with a root folder their relative paths resolve against.

    Args:
        frame: One row per image; see the module docstring for the columns.
        root: Folder that relative ``image``/``mask`` paths are relative to.
        name: Short dataset name for reports (``"fracatlas"``, ``"knee_kl_chen2018"`` ...).

    Raises:
        ManifestError: when a required column is missing, an image path is empty, a split value
            is not one of ``train/val/test`` or a JSON column does not parse.

    Example:
        >>> m = Manifest(pd.DataFrame({"image": ["a.png"], "patient_id": ["p1"], "label": ["0"]}), root=".")
        >>> len(m)
        1
    """

    def __init__(self, frame: pd.DataFrame, root: str | Path, *, name: str = "dataset") -> None:
        self.frame = frame.reset_index(drop=True).copy()
        self.root = Path(root)
        self.name = name
        self._validate()

    # -- construction / persistence -------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read a Manifest saved by :meth:`save` (CSV or Parquet); paths resolve against its folder."""
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"{path}: no such manifest file. Fix: pass a CSV/Parquet written by Manifest.save.")
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={c: "string" for c in STRING_COLUMNS}, keep_default_na=True)
        name = path.stem
        return cls(frame, root=path.parent, name=name)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the table with paths rewritten relative to the file's own folder.

        Raises:
            FileExistsError: when ``path`` exists and ``overwrite`` is False.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True or choose another path.")
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = self.frame.copy()
        for column in ("image", "mask"):
            if column in frame:
                frame[column] = [
                    _relative_to(self.resolve(p), path.parent) if isinstance(p, str) and p else p for p in frame[column]
                ]
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        return path

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"Manifest(name={self.name!r}, images={len(self)}, root={str(self.root)!r})"

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def resolve(self, relative: str | os.PathLike[str]) -> Path:
        """Absolute path of an ``image``/``mask`` entry."""
        p = Path(relative)
        # normpath (not resolve): absolute and free of "..", so tables join on it, symlinks kept
        return Path(os.path.normpath(p if p.is_absolute() else Path(os.path.abspath(self.root)) / p))

    def paths(self) -> list[Path]:
        """Absolute path of every image, in row order."""
        return [self.resolve(p) for p in self.frame["image"]]

    def paths_of(self, rows: Iterable[int]) -> list[Path]:
        """Absolute image paths of the given row positions."""
        images = self.frame["image"]
        return [self.resolve(images.iat[int(i)]) for i in rows]

    def rows_outside_root(self) -> list[int]:
        """Row positions whose relative ``image`` or ``mask`` path leaves :attr:`root` (e.g. ``../other/a.png``).

        Absolute paths are not counted (they say on purpose where the file is); symlinks are not followed.
        """
        rows: list[int] = []
        columns = [c for c in ("image", "mask") if c in self.frame]
        for i, values in enumerate(zip(*(self.frame[c] for c in columns), strict=True)):
            for value in values:
                if isinstance(value, str) and value and not Path(value).is_absolute():
                    parts = Path(os.path.normpath(value)).parts
                    if parts and parts[0] == "..":
                        rows.append(i)
                        break
        return rows

    def has(self, column: str) -> bool:
        """True when the column exists and has at least one non-missing value."""
        return column in self.frame and bool(self.frame[column].notna().any())

    def subset(self, rows: pd.Series | Iterable[bool]) -> Manifest:
        """A new Manifest with the selected rows (boolean mask)."""
        return Manifest(self.frame[list(rows) if not isinstance(rows, pd.Series) else rows], self.root, name=self.name)

    def split(self, name: str) -> Manifest:
        """Rows of one split (``train``/``val``/``test``)."""
        if "split" not in self.frame:
            raise ManifestError(f"{self.name}: no 'split' column. Fix: run `osteon data split` or pass --split-file.")
        return self.subset(self.frame["split"] == name)

    def with_columns(self, **columns: object) -> Manifest:
        frame = self.frame.copy()
        for key, value in columns.items():
            frame[key] = value
        return Manifest(frame, self.root, name=self.name)

    def boxes(self, index: int) -> list[dict]:
        """Parsed ``boxes`` of row ``index`` (empty list when none)."""
        return _parse_json_list(self.frame, "boxes", index)

    def polygons(self, index: int) -> list[dict]:
        """Parsed ``polygons`` of row ``index`` (empty list when none)."""
        return _parse_json_list(self.frame, "polygons", index)

    # -- validation -----------------------------------------------------------------------------
    def _validate(self) -> None:
        f = self.frame
        if "image" not in f:
            raise ManifestError(
                f"{self.name}: the manifest has no 'image' column (columns: {list(f.columns)}). "
                "Fix: name the column holding the image paths 'image'."
            )
        empty = f["image"].isna() | (f["image"].astype("string").str.len() == 0)
        if empty.any():
            rows = list(f.index[empty][:5])
            raise ManifestError(f"{self.name}: empty image path in rows {rows}. Fix: drop or fill those rows.")
        for column in STRING_COLUMNS:
            if column in f:
                f[column] = f[column].astype("string")
        if "split" in f:
            bad = f["split"].notna() & ~f["split"].isin(SPLITS)
            if bad.any():
                values = sorted(set(f.loc[bad, "split"]))
                raise ManifestError(
                    f"{self.name}: split values {values} are not allowed; use train/val/test "
                    "(rename e.g. 'valid' → 'val') or leave empty."
                )
        for column in ("boxes", "polygons"):
            if column in f:
                for i, value in f[column].items():
                    if isinstance(value, str) and value:
                        try:
                            json_list(value, image=f"{self.name}: row {i} ({f.at[i, 'image']})", column=column)
                        except DatasetFormatError as exc:
                            raise ManifestError(str(exc)) from None
        if "target" in f:
            numbers = pd.to_numeric(f["target"], errors="coerce")
            bad = f["target"].notna() & numbers.isna()
            if bad.any():
                i = bad.idxmax()
                raise ManifestError(
                    f"{self.name}: 'target' must be numeric; row {i} ({f.at[i, 'image']}) has {f.at[i, 'target']!r}. "
                    "Fix: clean the value, or keep text in another column (e.g. 'label')."
                )
            f["target"] = numbers
        if "patient_id" not in f or f["patient_id"].isna().all():
            warnings.warn(
                f"{self.name}: no patient ids. Splits will group only by duplicate content, so images of one "
                "patient may land in both train and test (leakage). Fix: add a 'patient_id' column.",
                MissingPatientIdWarning,
                stacklevel=3,
            )


def _relative_to(path: Path, folder: Path) -> str:
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive on Windows
        return str(path)


def _parse_json_list(frame: pd.DataFrame, column: str, index: int) -> list[dict]:
    if column not in frame:
        return []
    return json_list(frame.at[index, column], image=str(frame.at[index, "image"]), column=column)
