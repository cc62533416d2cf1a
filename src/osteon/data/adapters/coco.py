"""COCO JSON (``images`` / ``annotations`` / ``categories``) → Manifest, one row per COCO image.

Layout: a COCO JSON file, or a folder holding exactly one (directly or in ``annotations/``) plus the
images. ``file_name`` is resolved against the ``images`` option, else the first of the JSON's folder,
``<json folder>/images``, the folder above it and ``<folder above>/images`` where every file exists.

Conversions:
    * ``bbox`` ``[x, y, w, h]`` (top-left corner, pixels, floats) → ``{"xyxy": [x, y, x + w, y + h]}``.
    * polygon ``segmentation`` ``[[x1, y1, x2, y2, ...], ...]`` → one ``{"points": [[x1, y1], ...]}``
      per part (``polygons[i]`` matches ``boxes[i]`` only when every annotation has one part).
    * RLE ``segmentation`` (a dict) is not supported: it raises, or with ``skip_rle=True`` the box is
      kept and the mask dropped (with a warning).
    * ``label`` of a box/polygon = its category *name*; category ids are looked up as given, so id 0
      is an ordinary category (FracAtlas uses it), never "background".
    * image ``label`` = the sorted distinct category names joined by ``|`` ("" for images without
      annotations); ``width`` / ``height`` from the COCO image record.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from osteon.data.adapters._base import DatasetAdapter, image_label, to_json
from osteon.data.manifest import Manifest
from osteon.errors import DatasetFormatError

NAME = "coco"
LAYOUT = "a COCO JSON file (keys images/annotations/categories), or a folder with one such JSON and the images"


@dataclass
class CocoImage:
    """The annotations of one COCO image, already converted to Manifest conventions.

    Attributes:
        file_name: ``file_name`` as written in the JSON.
        width, height: Image size in pixels from the JSON, or None when absent.
        boxes: ``[{"xyxy": [x1, y1, x2, y2], "label": name}, ...]`` in pixels.
        polygons: ``[{"points": [[x, y], ...], "label": name}, ...]`` in pixels.
    """

    file_name: str
    width: int | None = None
    height: int | None = None
    boxes: list[dict[str, Any]] = field(default_factory=list)
    polygons: list[dict[str, Any]] = field(default_factory=list)


def read_coco(json_path: Path, *, skip_rle: bool = False) -> list[CocoImage]:
    """Parse a COCO detection/segmentation JSON into per-image records, in the JSON's image order.

    Args:
        json_path: The COCO JSON file.
        skip_rle: Keep the boxes of RLE-encoded masks and drop the masks instead of raising.

    Returns:
        One :class:`CocoImage` per entry of ``images`` (images without annotations included).

    Raises:
        DatasetFormatError: when the file is not JSON, lacks ``images``/``annotations``/``categories``,
            or an annotation names an unknown image id or category id, has a malformed ``bbox`` or
            ``segmentation``, or an RLE mask (unless ``skip_rle``). The message names the file and
            the annotation id.
    """
    data = _read_json(json_path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetFormatError(
                f"{json_path}: not a COCO file: the top-level key {key!r} is missing or not a list. "
                "Fix: pass a COCO JSON with 'images', 'annotations' and 'categories' lists."
            )
    categories = {c.get("id"): str(c.get("name", c.get("id"))) for c in data["categories"] if isinstance(c, dict)}
    images: dict[Any, CocoImage] = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or "id" not in entry or not entry.get("file_name"):
            raise DatasetFormatError(f"{json_path}: image record {entry!r} needs 'id' and 'file_name'.")
        images[entry["id"]] = CocoImage(
            file_name=str(entry["file_name"]),
            width=_int_or_none(entry.get("width")),
            height=_int_or_none(entry.get("height")),
        )
    dropped_rle = 0
    for index, ann in enumerate(data["annotations"]):
        where = f"{json_path}: annotation id {ann.get('id', f'#{index}')}"
        image = images.get(ann.get("image_id"))
        if image is None:
            raise DatasetFormatError(
                f"{where} refers to image_id {ann.get('image_id')!r}, which is not in 'images'. "
                "Fix: add the image record or remove the annotation."
            )
        if ann.get("category_id") not in categories:
            raise DatasetFormatError(
                f"{where} has category_id {ann.get('category_id')!r}, which is not in 'categories' "
                f"(known ids: {sorted(categories, key=str)}). Fix: add the category or correct the id."
            )
        label = categories[ann["category_id"]]
        image.boxes.append({"xyxy": _xywh_to_xyxy(ann.get("bbox"), where), "label": label})
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, dict):
            if not skip_rle:
                raise DatasetFormatError(
                    f"{where} has an RLE mask; Osteon stores polygons only. Fix: convert RLE masks to polygons, "
                    "or pass skip_rle=True to keep the boxes and drop these masks."
                )
            dropped_rle += 1
            continue
        for points in _polygon_parts(segmentation, where):
            image.polygons.append({"points": points, "label": label})
    if dropped_rle:
        warnings.warn(
            f"{json_path}: dropped {dropped_rle} RLE masks (skip_rle=True); their boxes are kept.", stacklevel=3
        )
    return list(images.values())


def find_coco_json(folder: Path) -> list[Path]:
    """COCO JSON files directly in ``folder`` or in ``folder/annotations`` (sorted)."""
    candidates = sorted(folder.glob("*.json")) + sorted((folder / "annotations").glob("*.json"))
    return [p for p in candidates if _looks_like_coco(p)]


def detect(path: Path) -> bool:
    """A COCO JSON file, or a folder with exactly one COCO JSON at its top or in ``annotations/``."""
    if path.is_file():
        return path.suffix.lower() == ".json" and _looks_like_coco(path)
    return path.is_dir() and len(find_coco_json(path)) == 1


def load(path: Path, *, images_root: str | Path | None = None, skip_rle: bool = False) -> Manifest:
    """Read a COCO dataset.

    Args:
        path: The COCO JSON, or a folder holding exactly one.
        images_root: Folder that ``file_name`` is relative to (a relative folder is relative to the JSON's
            folder, like the ``csv`` format's option of the same name); default: searched next to the JSON.
        skip_rle: Keep boxes of RLE masks and drop the masks instead of raising.

    Returns:
        Manifest with ``image``, ``label``, ``boxes``, ``polygons``, ``width``, ``height``; root = the
        images folder.

    Raises:
        DatasetFormatError: bad JSON (see :func:`read_coco`), several or no COCO JSON in a folder, or
            a ``file_name`` that exists in none of the searched folders.
    """
    json_path = _json_of(path)
    records = read_coco(json_path, skip_rle=skip_rle)
    root = _images_root(json_path, records, Path(images_root) if images_root is not None else None)
    frame = pd.DataFrame(
        {
            "image": [r.file_name for r in records],
            "label": [image_label(b["label"] for b in r.boxes) for r in records],
            "boxes": [to_json(r.boxes) for r in records],
            "polygons": [to_json(r.polygons) for r in records],
            "width": pd.array([r.width for r in records], dtype="Int64"),
            "height": pd.array([r.height for r in records], dtype="Int64"),
        }
    )
    return Manifest(frame, root=root, name=json_path.stem)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)


# -- helpers ------------------------------------------------------------------------------------
def _read_json(json_path: Path) -> dict[str, Any]:
    try:
        with open(json_path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(
            f"{json_path}: cannot read as JSON ({exc}). Fix: pass a valid COCO JSON file."
        ) from exc
    if not isinstance(data, dict):
        raise DatasetFormatError(f"{json_path}: a COCO file is a JSON object, got a {type(data).__name__}.")
    return data


def _looks_like_coco(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)


def _json_of(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise DatasetFormatError(f"{path}: no such file or folder. Fix: pass a COCO JSON file or its folder.")
    found = find_coco_json(path)
    if len(found) != 1:
        shown = ", ".join(str(p) for p in found) or "none"
        raise DatasetFormatError(
            f"{path}: expected exactly one COCO JSON in the folder or its annotations/ folder, found {shown}. "
            "Fix: pass the JSON file itself."
        )
    return found[0]


def _images_root(json_path: Path, records: list[CocoImage], images: Path | None) -> Path:
    folder = json_path.parent
    if images is not None:
        candidates = [images if images.is_absolute() else folder / images]
    else:
        candidates = [folder, folder / "images", folder.parent, folder.parent / "images"]
    best: tuple[int, Path, str] = (-1, candidates[0], "")  # (files found before the first missing one, root, name)
    for root in candidates:
        missing = next((i for i, r in enumerate(records) if not (root / r.file_name).is_file()), None)
        if missing is None:
            return root
        if missing > best[0]:
            best = (missing, root, records[missing].file_name)
    _, root, first_missing = best
    tried = ", ".join(str(c) for c in candidates)
    raise DatasetFormatError(
        f"{json_path}: image file {first_missing!r} not found (looked for {root / first_missing}; folders tried: "
        f"{tried}). Fix: pass images_root=<folder the file_names are relative to> (CLI: --images-root, "
        "YAML: images_root)."
    )


def _xywh_to_xyxy(bbox: object, where: str) -> list[float]:
    if not (isinstance(bbox, list | tuple) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise DatasetFormatError(f"{where}: 'bbox' must be [x, y, width, height] numbers, got {bbox!r}.")
    x, y, w, h = (float(v) for v in bbox)
    return [x, y, x + w, y + h]


def _polygon_parts(segmentation: object, where: str) -> list[list[list[float]]]:
    if segmentation is None or segmentation == []:
        return []
    if isinstance(segmentation, list) and segmentation and all(_is_number(v) for v in segmentation):
        segmentation = [segmentation]  # a single flat polygon, as some exporters write it
    parts: list[list[list[float]]] = []
    if not isinstance(segmentation, list):
        raise DatasetFormatError(
            f"{where}: 'segmentation' must be a list of polygons, got {type(segmentation).__name__}."
        )
    for part in segmentation:
        if not (isinstance(part, list) and len(part) >= 6 and len(part) % 2 == 0 and all(_is_number(v) for v in part)):
            raise DatasetFormatError(
                f"{where}: a polygon must be a flat list [x1, y1, x2, y2, ...] of at least 3 points, got {part!r:.80}."
            )
        parts.append([[float(part[i]), float(part[i + 1])] for i in range(0, len(part), 2)])
    return parts


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
