"""Pascal VOC XML (``Annotations/**/*.xml`` + the images) → Manifest, one row per XML file.

Layout: a folder with ``Annotations/`` holding one XML per image (``<annotation>`` with ``<filename>``,
``<size>`` and ``<object><name/><bndbox>xmin ymin xmax ymax</bndbox></object>``), in it or in its
subfolders (FracAtlas keeps them in ``Annotations/PASCAL VOC/``). Images are found by ``<filename>``:
first ``JPEGImages/<filename>`` (the VOC devkit), then anywhere under the folder (outside ``Annotations/``),
where the name must be unique. The split comes from ``ImageSets/Main/{train,val,test}.txt`` when present.

Conversions:
    * ``bndbox`` → ``{"xyxy": [xmin, ymin, xmax, ymax], "label": name}`` as written: most exporters (CVAT,
      LabelImg, Roboflow, FracAtlas — whose VOC boxes are its COCO boxes rounded) write pixel-corner
      coordinates. ``one_based=True`` reads the original devkit's 1-based inclusive indices instead
      (``x1 = xmin - 1``, ``x2 = xmax``).
    * ``difficult`` objects are kept and marked ``"difficult": 1`` in their box record.
    * An XML without objects is an image without objects (``boxes`` = ``[]``, ``label`` = "").
    * ``width``/``height`` from ``<size>``; ``label`` = the sorted distinct object names joined by ``|``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd

from osteon.data.adapters._base import (
    IMAGE_SUFFIXES,
    DatasetAdapter,
    image_label,
    relative_posix,
    split_name,
    to_json,
    walk_files,
)
from osteon.data.manifest import Manifest
from osteon.errors import DatasetFormatError

NAME = "voc"
LAYOUT = "Pascal VOC: Annotations/[**/]*.xml (<annotation> with <object><bndbox>) beside the images"


def _xml_files(path: Path) -> list[Path]:
    folder = path / "Annotations"
    return sorted(p for p in walk_files(folder) if p.suffix.lower() == ".xml") if folder.is_dir() else []


def detect(path: Path) -> bool:
    """True for a folder whose ``Annotations/`` holds XML files with an ``<annotation>`` root (first one read)."""
    if not path.is_dir():
        return False
    files = _xml_files(path)
    if not files:
        return False
    try:
        return ET.parse(files[0]).getroot().tag == "annotation"
    except (ET.ParseError, OSError):
        return False


def load(path: Path, *, one_based: bool = False) -> Manifest:
    """Read a Pascal VOC dataset.

    Args:
        path: Folder holding ``Annotations/`` and the images.
        one_based: Coordinates are the VOC devkit's 1-based inclusive pixel indices (subtract 1 from
            ``xmin``/``ymin``). Default: pixel-corner coordinates, as most exporters write.

    Returns:
        Manifest with ``image``, ``split`` (when ``ImageSets/Main`` lists it), ``label``, ``boxes`` (xyxy
        pixels), ``width``, ``height``; root = ``path``.

    Raises:
        DatasetFormatError: not a VOC folder, an XML that does not parse or lacks ``filename``/``bndbox``
            numbers, or an image that cannot be found (or is found twice) — the message names the XML.
    """
    if not detect(path):
        raise DatasetFormatError(f"{path}: not a Pascal VOC folder; expected {LAYOUT}. Fix: pass that folder.")
    index = _image_index(path)
    splits = _splits(path)
    rows = []
    for xml_path in _xml_files(path):
        record = read_voc_xml(xml_path, one_based=one_based)
        image = _find_image(path, record["filename"], index, xml_path)
        rows.append(
            {
                "image": relative_posix(image, path),
                "split": splits.get(Path(record["filename"]).stem, pd.NA),
                "label": image_label(b["label"] for b in record["boxes"]),
                "boxes": to_json(record["boxes"]),
                "width": record["width"],
                "height": record["height"],
            }
        )
    frame = pd.DataFrame(rows, columns=["image", "split", "label", "boxes", "width", "height"])
    frame["width"] = pd.array(frame["width"], dtype="Int64")
    frame["height"] = pd.array(frame["height"], dtype="Int64")
    if frame["split"].isna().all():
        frame = frame.drop(columns="split")
    return Manifest(frame, root=path, name=path.name)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)


def read_voc_xml(xml_path: Path, *, one_based: bool = False) -> dict[str, Any]:
    """One VOC XML → ``{"filename", "width", "height", "boxes": [{"xyxy", "label"(, "difficult")}]}``.

    Raises:
        DatasetFormatError: unparseable XML, no ``<filename>``, or an object without a numeric ``bndbox``.
    """
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetFormatError(f"{xml_path}: not readable as XML ({exc}). Fix: repair or remove the file.") from exc
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise DatasetFormatError(f"{xml_path}: no <filename>. Fix: add the image's file name to the annotation.")
    boxes = []
    for k, obj in enumerate(root.findall("object")):
        label = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        values = [_number(box, tag) for tag in ("xmin", "ymin", "xmax", "ymax")] if box is not None else [None]
        if not label or any(v is None for v in values):
            raise DatasetFormatError(
                f"{xml_path}: object #{k} needs <name> and <bndbox> with numeric xmin, ymin, xmax, ymax. "
                "Fix: complete or delete the object."
            )
        x1, y1, x2, y2 = (float(v) for v in values)  # type: ignore[arg-type]
        if one_based:
            x1, y1 = x1 - 1, y1 - 1
        record: dict[str, Any] = {"xyxy": [x1, y1, x2, y2], "label": label}
        if (obj.findtext("difficult") or "0").strip() == "1":
            record["difficult"] = 1
        boxes.append(record)
    size = root.find("size")
    width = _number(size, "width") if size is not None else None
    height = _number(size, "height") if size is not None else None
    return {
        "filename": filename,
        "width": int(width) if width else None,
        "height": int(height) if height else None,
        "boxes": boxes,
    }


def _number(node: ET.Element | None, tag: str) -> float | None:
    text = node.findtext(tag) if node is not None else None
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _image_index(path: Path) -> dict[str, list[Path]]:
    """File name → image files under ``path`` (outside ``Annotations/``)."""
    index: dict[str, list[Path]] = {}
    annotations = path / "Annotations"
    for file in walk_files(path):
        if file.suffix.lower() in IMAGE_SUFFIXES and annotations not in file.parents:
            index.setdefault(file.name, []).append(file)
    return index


def _find_image(path: Path, filename: str, index: dict[str, list[Path]], xml_path: Path) -> Path:
    devkit = path / "JPEGImages" / filename
    if devkit.is_file():
        return devkit
    found = index.get(Path(filename).name, [])
    if len(found) == 1:
        return found[0]
    if not found:
        raise DatasetFormatError(
            f"{xml_path}: image {filename!r} not found in {path / 'JPEGImages'} or anywhere under {path}. "
            "Fix: put the images beside Annotations/ (e.g. in JPEGImages/), or correct <filename>."
        )
    shown = ", ".join(str(p) for p in found[:3])
    raise DatasetFormatError(
        f"{xml_path}: image {filename!r} exists in several places ({shown}); cannot tell which one it annotates. "
        "Fix: keep one copy, or use the devkit layout JPEGImages/<filename>."
    )


def _splits(path: Path) -> dict[str, str]:
    """Image stem → split from ``ImageSets/Main/{train,val,test}.txt`` (``trainval`` is ignored)."""
    folder = path / "ImageSets" / "Main"
    out: dict[str, str] = {}
    if not folder.is_dir():
        return out
    for list_file in sorted(folder.glob("*.txt")):
        name = split_name(list_file.stem)
        if name is None:
            continue
        for line in list_file.read_text().splitlines():
            stem = line.strip().split(" ")[0] if line.strip() else ""
            if stem:
                out.setdefault(stem, name)
    return out
