"""A CSV (or TSV) of image paths plus columns → Manifest (format name ``csv``).

The image column is ``image_column``, else the first of :data:`IMAGE_COLUMNS` present (case-insensitive);
``image_template`` (e.g. ``"images/{filestem}.png"``) builds it from other columns instead.
``label_column`` / ``patient_column`` / ``target_column`` / ``split_column`` rename a column to
``label`` / ``patient_id`` / ``target`` / ``split``; every other column is kept as-is. Paths are relative
to ``images_root`` when given (itself relative to the CSV's folder), else to the CSV's folder.
Split values ``valid``/``validation``/``training``/``testing`` become ``val``/``train``/``test``.
Referenced files are not checked here (``osteon data check`` does that).

A CSV written by :meth:`Manifest.save` (it has an ``image`` column) is detected as format ``manifest``
instead and read with :meth:`Manifest.load`.
"""

from __future__ import annotations

import string
from pathlib import Path

import pandas as pd

from osteon.data.adapters._base import DatasetAdapter, split_name
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError, DatasetFormatError

NAME = "csv"
LAYOUT = "a .csv/.tsv with a column of image paths (image, path, file, filename, filepath ...)"
IMAGE_COLUMNS = ("image", "path", "file", "filename", "filepath", "file_name", "image_path")
SUFFIXES = (".csv", ".tsv")
#: Identifier columns read as text, so that "0012345" keeps its zeros.
TEXT_COLUMNS = ("patient_id", "study_id", "label", "split")


def detect(path: Path) -> bool:
    """True for a .csv/.tsv file whose header has one of :data:`IMAGE_COLUMNS`."""
    if not (path.is_file() and path.suffix.lower() in SUFFIXES):
        return False
    try:
        header = pd.read_csv(path, sep=_sep(path), nrows=0)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return _find_image_column(list(header.columns)) is not None


def load(
    path: Path,
    *,
    image_column: str | None = None,
    label_column: str | None = None,
    patient_column: str | None = None,
    target_column: str | None = None,
    split_column: str | None = None,
    images_root: str | Path | None = None,
    image_template: str | None = None,
) -> Manifest:
    """Read a CSV of image paths.

    Args:
        path: The .csv (comma) or .tsv (tab) file.
        image_column: Column of image paths; default: the first of :data:`IMAGE_COLUMNS` present.
        label_column: Column renamed to ``label`` (class name or grade, read as text).
        patient_column: Column renamed to ``patient_id`` (read as text).
        target_column: Column renamed to ``target`` (a number).
        split_column: Column renamed to ``split`` (``train``/``val``/``test`` and their aliases).
        images_root: Folder the paths are relative to (relative to the CSV's folder); default: the CSV's folder.
        image_template: Build the path from other columns instead of reading one, e.g.
            ``"images/{filestem}.png"`` (Python ``str.format`` fields name CSV columns, read as text).

    Returns:
        Manifest with ``image`` and the renamed and remaining columns; root = ``images_root`` or the CSV's folder.

    Raises:
        DatasetFormatError: the file cannot be parsed, has no image column or has unknown split values.
        ConfigError: a named column does not exist, a rename would overwrite an existing column, or
            both/neither of ``image_column`` and ``image_template`` apply.
    """
    if not path.is_file():
        raise DatasetFormatError(f"{path}: no such CSV file. Fix: pass the path of the CSV of image paths.")
    try:
        header = list(pd.read_csv(path, sep=_sep(path), nrows=0).columns)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{path}: cannot parse as CSV ({exc}).") from exc
    fields = _template_fields(image_template, header, path)
    if image_template is not None and (image_column is not None or "image" in header):
        raise ConfigError(
            f"{path}: image_template builds the 'image' column, so pass no image_column and have no 'image' column "
            "in the CSV."
        )
    image = image_column if image_column is not None else _find_image_column(header)
    if image_template is not None:
        image = None
    elif image is None:
        raise DatasetFormatError(
            f"{path}: no image-path column; columns are {header}, looked for {list(IMAGE_COLUMNS)}. "
            "Fix: pass image_column=<name> (CLI: --image-column NAME, YAML: image_column: NAME), or build the "
            "paths from other columns with image_template (CLI: --image-template 'images/{id}.png')."
        )
    pairs = [
        (image, "image"),
        (label_column, "label"),
        (patient_column, "patient_id"),
        (target_column, "target"),
        (split_column, "split"),
    ]
    renames: dict[str, str] = {}
    for source, target in pairs:
        if source is None:
            continue
        if source in renames:
            raise ConfigError(f"{path}: column {source!r} is given for both {renames[source]!r} and {target!r}.")
        renames[source] = target
    for source, target in renames.items():
        if source not in header:
            raise ConfigError(f"{path}: column {source!r} (for {target!r}) not found; columns are {header}.")
        if target in header and target != source and target not in renames:
            raise ConfigError(
                f"{path}: renaming {source!r} to {target!r} would overwrite the existing column {target!r}. "
                f"Fix: rename one of them in the CSV, or pass {target!r} itself as the column."
            )
    text = {c: "string" for c in header if renames.get(c, c) in ("image", *TEXT_COLUMNS) or c in fields}
    frame = pd.read_csv(path, sep=_sep(path), dtype=text)
    if image_template is not None:
        frame.insert(0, "image", [image_template.format(**row) for row in frame[fields].to_dict("records")])
    frame = frame.rename(columns=renames)
    if "split" in frame:
        frame["split"] = _normalise_splits(frame["split"], path)
    root = path.parent if images_root is None else path.parent / Path(images_root)
    return Manifest(frame, root=root, name=path.stem)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)


def _template_fields(template: str | None, header: list[str], path: Path) -> list[str]:
    """Column names used by ``image_template`` (all must exist)."""
    if template is None:
        return []
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"image_template {template!r} is not a valid format string ({exc}).") from exc
    missing = [f for f in fields if f not in header]
    if not fields or missing:
        raise ConfigError(
            f"{path}: image_template {template!r} must name CSV columns in braces; unknown: {missing}, "
            f"columns are {header}. Example: 'images/{{filestem}}.png'."
        )
    return fields


def _sep(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _find_image_column(columns: list[str]) -> str | None:
    lowered = {str(c).strip().lower(): c for c in columns}
    return next((lowered[name] for name in IMAGE_COLUMNS if name in lowered), None)


def _normalise_splits(values: pd.Series, path: Path) -> pd.Series:
    text = values.astype("string").str.strip()
    mapped = text.map(lambda v: split_name(v) if isinstance(v, str) and v else pd.NA).astype("string")
    bad = text.notna() & (text != "") & mapped.isna()
    if bad.any():
        raise DatasetFormatError(
            f"{path}: split values {sorted(set(text[bad]))} are not train/val/test (or valid/validation/training/"
            "testing). Fix: rename them in the CSV."
        )
    return mapped
