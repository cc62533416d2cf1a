"""FracAtlas (Abedeen et al., Sci Data 2023) in its native layout → Manifest, one row per image.

Layout (the figshare release)::

    images/Fractured/*.jpg, images/Non_fractured/*.jpg
    dataset.csv                                       image_id, hand, leg, hip, shoulder, mixed, hardware,
                                                      multiscan, fractured, fracture_count, frontal, lateral, oblique
    Annotations/COCO JSON/COCO_fracture_masks.json    boxes + polygons of the fractured images
    Utilities/Fracture Split/{train,valid,test}.csv   the authors' split of the fractured images

Choices (recorded in docs/decisions.md):
    * **The folder wins.** ``label`` (``fractured`` / ``non_fractured``) and ``fractured`` (1/0) come from
      the image's folder; ``label_csv`` keeps what ``dataset.csv`` says, and a :class:`LabelConflictWarning`
      names the images where they differ (IMG0003298 in the release: in ``Fractured`` with a COCO box, but
      ``fractured=0`` in the CSV).
    * ``body_part``: the one region set among hand/leg/hip/shoulder; ``"mixed"`` when the ``mixed`` column
      is 1 or several regions are set (the paper's five body-part groups). ``body_parts`` keeps the regions
      joined by ``+`` (e.g. ``"hand+shoulder"``).
    * ``view``: the views set among frontal/lateral/oblique joined by ``+`` (e.g. ``"frontal+lateral"``).
    * COCO category id 0 (``"fractured"``) is an ordinary category, not background.
    * ``width``/``height`` from the COCO image records (fractured images); NA for the others, since
      opening 974 JPEGs is too slow for a loader. COCO sizes are in EXIF-rotated (displayed) space.
    * ``split`` from the split CSVs (``valid`` → ``val``); non-fractured images have none (NA).
    * No patient ids exist in FracAtlas, so ``patient_id`` is NA and the Manifest warns.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from osteon.data.adapters._base import DatasetAdapter, list_images, split_name, to_json
from osteon.data.adapters.coco import CocoImage, read_coco
from osteon.data.manifest import Manifest
from osteon.errors import DatasetFormatError

NAME = "fracatlas"
LAYOUT = "FracAtlas release: images/Fractured/*.jpg, images/Non_fractured/*.jpg and dataset.csv"
FOLDER_LABELS = {"Fractured": "fractured", "Non_fractured": "non_fractured"}
COCO_JSON = Path("Annotations", "COCO JSON", "COCO_fracture_masks.json")
SPLIT_DIR = Path("Utilities", "Fracture Split")
REGIONS = ("hand", "leg", "hip", "shoulder")
VIEWS = ("frontal", "lateral", "oblique")
CSV_INT_COLUMNS = ("hardware", "multiscan", "fracture_count")


class LabelConflictWarning(UserWarning):
    """Two sources of the same dataset disagree on an image's label (the adapter says which one wins)."""


def detect(path: Path) -> bool:
    """True for a folder with ``images/Fractured``, ``images/Non_fractured`` and ``dataset.csv``."""
    return (
        path.is_dir()
        and all((path / "images" / folder).is_dir() for folder in FOLDER_LABELS)
        and (path / "dataset.csv").is_file()
    )


def load(path: Path) -> Manifest:
    """Read FracAtlas; see the module docstring for the columns and the choices made.

    Args:
        path: The FracAtlas root (the folder holding ``images/`` and ``dataset.csv``).

    Returns:
        Manifest with ``image``, ``patient_id`` (NA), ``split``, ``label``, ``fractured``, ``label_csv``,
        ``body_part``, ``body_parts``, ``view``, ``hardware``, ``multiscan``, ``fracture_count``,
        ``boxes`` (xyxy pixels, label ``"fractured"``), ``polygons``, ``width``, ``height``; root = ``path``.

    Raises:
        DatasetFormatError: when ``path`` is not a FracAtlas folder.

    Warns:
        LabelConflictWarning: for images whose folder and ``dataset.csv`` disagree.
        MissingPatientIdWarning: always (FracAtlas has no patient ids).
    """
    if not detect(path):
        missing = [p for p in ("images/Fractured", "images/Non_fractured", "dataset.csv") if not (path / p).exists()]
        raise DatasetFormatError(
            f"{path}: not a FracAtlas folder; expected images/Fractured/*.jpg, images/Non_fractured/*.jpg and "
            f"dataset.csv, missing: {', '.join(missing)}. Fix: pass the FracAtlas root folder, or another --format."
        )
    rows = [
        {"image": f"images/{folder}/{p.name}", "file": p.name, "label": label, "fractured": int(label == "fractured")}
        for folder, label in FOLDER_LABELS.items()
        for p in list_images(path / "images" / folder)
    ]
    frame = pd.DataFrame(rows, columns=["image", "file", "label", "fractured"])
    frame.insert(1, "patient_id", pd.array([pd.NA] * len(frame), dtype="string"))
    frame.insert(2, "split", _splits(path).reindex(frame["file"]).array)
    frame = frame.join(_covariates(path / "dataset.csv"), on="file")
    frame = frame.join(_annotations(path, frame), on="file")
    _warn_conflicts(frame)
    frame["fractured"] = frame["fractured"].astype("Int64")
    return Manifest(frame.drop(columns="file"), root=path, name=NAME)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)


def _covariates(csv_path: Path) -> pd.DataFrame:
    """dataset.csv → label_csv, body_part, body_parts, view and the integer flags, indexed by file name."""
    table = pd.read_csv(csv_path)
    needed = ["image_id", "fractured", *REGIONS, "mixed", *VIEWS, *CSV_INT_COLUMNS]
    absent = [c for c in needed if c not in table]
    if absent:
        raise DatasetFormatError(
            f"{csv_path}: missing columns {absent}; FracAtlas' dataset.csv has {needed}. Fix: use the original file."
        )
    out = pd.DataFrame(index=pd.Index(table["image_id"].astype(str), name="file"))
    out["label_csv"] = [FOLDER_LABELS["Fractured" if v == 1 else "Non_fractured"] for v in table["fractured"]]
    regions = [[r for r in REGIONS if row[r] == 1] for _, row in table.iterrows()]
    out["body_part"] = [
        "mixed" if mixed == 1 or len(r) > 1 else (r[0] if r else pd.NA)
        for r, mixed in zip(regions, table["mixed"], strict=True)
    ]
    out["body_parts"] = ["+".join(r) if r else pd.NA for r in regions]
    views = table[list(VIEWS)].to_numpy() == 1
    out["view"] = ["+".join(v for v, on in zip(VIEWS, row, strict=True) if on) or pd.NA for row in views]
    for column in CSV_INT_COLUMNS:
        out[column] = pd.array(table[column].to_numpy(), dtype="Int64")
    for column in ("label_csv", "body_part", "body_parts", "view"):
        out[column] = out[column].astype("string")
    return out[~out.index.duplicated()]


def _splits(path: Path) -> pd.Series:
    """File name → ``train``/``val``/``test`` from ``Utilities/Fracture Split/*.csv`` (empty when absent)."""
    split = pd.Series(dtype="string")
    for csv_path in sorted((path / SPLIT_DIR).glob("*.csv")):
        name = split_name(csv_path.stem)
        if name is None:
            continue
        ids = pd.read_csv(csv_path)["image_id"].astype(str)
        split = pd.concat([split, pd.Series(name, index=ids.to_numpy(), dtype="string")])
    return split[~split.index.duplicated()]


def _annotations(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Boxes, polygons, width, height by file name. Non-fractured images get empty lists; fractured
    images missing from the COCO file get NA (unknown, not "no fracture")."""
    coco_path = path / COCO_JSON
    records: dict[str, CocoImage] = {}
    if coco_path.is_file():
        records = {Path(r.file_name).name: r for r in read_coco(coco_path)}
    else:
        warnings.warn(f"{coco_path} not found: FracAtlas is loaded without boxes or polygons.", stacklevel=3)
    out = pd.DataFrame(index=pd.Index(frame["file"], name="file"))
    boxes, polygons, widths, heights = [], [], [], []
    for file, fractured in zip(frame["file"], frame["fractured"], strict=True):
        record = records.get(file)
        if record is not None:
            boxes.append(to_json(record.boxes))
            polygons.append(to_json(record.polygons))
        else:
            empty = "[]" if fractured == 0 else pd.NA
            boxes.append(empty)
            polygons.append(empty)
        widths.append(record.width if record is not None else None)
        heights.append(record.height if record is not None else None)
    out["boxes"] = pd.array(boxes, dtype="string")
    out["polygons"] = pd.array(polygons, dtype="string")
    out["width"] = pd.array(widths, dtype="Int64")
    out["height"] = pd.array(heights, dtype="Int64")
    return out[~out.index.duplicated()]


def _warn_conflicts(frame: pd.DataFrame) -> None:
    conflict = frame["label_csv"].notna() & (frame["label_csv"] != frame["label"])
    if conflict.any():
        names = [
            f"{f} (folder: {a}, dataset.csv: {b})"
            for f, a, b in frame.loc[conflict, ["file", "label", "label_csv"]].to_numpy()
        ]
        shown = "; ".join(names[:10]) + (f"; ... {len(names) - 10} more" if len(names) > 10 else "")
        warnings.warn(
            f"fracatlas: {len(names)} image(s) where the folder and dataset.csv's 'fractured' disagree: {shown}. "
            "The folder wins ('label', 'fractured'); dataset.csv's value is kept in 'label_csv'.",
            LabelConflictWarning,
            stacklevel=3,
        )
