"""YOLO txt labels → Manifest: ``images/[split/]*.png`` beside ``labels/[split/]*.txt``.

Each label line is ``class cx cy w h`` with the centre and size normalised to 0..1 by the image width
and height (Ultralytics' detection format), or ``class x1 y1 x2 y2 x3 y3 ...`` (its segmentation
format, normalised polygon; its box is the polygon's extent). They become pixel ``xyxy`` boxes::

    x1 = (cx - w / 2) * W    y1 = (cy - h / 2) * H    x2 = (cx + w / 2) * W    y2 = (cy + h / 2) * H

so the image size is needed: it is read from the file header with Pillow (no pixel decoding).
A missing or empty label file means an image without objects (``boxes`` = ``[]``, ``label`` = "").
Class names come from the ``class_names`` option, else the first of ``classes.txt``, ``labels.txt``
(in the root or in ``labels/``), ``data.yaml``/``dataset.yaml`` ``names`` (list or ``{id: name}``);
without any, the class index is the label. ``split`` is the folder under ``images/`` when it is a
split name (``train``, ``val``, ``valid``, ``test`` ...).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from PIL import Image, UnidentifiedImageError

from osteon.data.adapters._base import DatasetAdapter, image_label, relative_posix, split_name, to_json, walk_files
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError, DatasetFormatError

NAME = "yolo"
LAYOUT = "images/[split/]*.png|jpg beside labels/[split/]*.txt with lines 'class cx cy w h' (normalised)"
YOLO_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
NAME_FILES = ("classes.txt", "labels.txt", "labels/classes.txt", "labels/labels.txt")
YAML_FILES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")


def detect(path: Path) -> bool:
    """True for a folder with ``images/`` and ``labels/`` subfolders."""
    return path.is_dir() and (path / "images").is_dir() and (path / "labels").is_dir()


def load(path: Path, *, class_names: list[str] | None = None) -> Manifest:
    """Read a YOLO dataset.

    Args:
        path: Folder holding ``images/`` and ``labels/``.
        class_names: Name of each class index; default: read from the class-name files (module docstring).

    Returns:
        Manifest with ``image``, ``split``, ``label``, ``boxes`` (pixel xyxy), ``polygons`` (pixels),
        ``width``, ``height``; root = ``path``.

    Raises:
        DatasetFormatError: not a YOLO layout, an unreadable image header, or a bad label line (the
            message names the file and the line number).
        ConfigError: ``class_names`` is not a list of strings.
    """
    if not detect(path):
        raise DatasetFormatError(f"{path}: not a YOLO dataset; expected {LAYOUT}. Fix: pass that folder.")
    names = _class_names(path, class_names)
    rows = []
    images_dir = path / "images"
    for image_path in walk_files(images_dir):
        if image_path.suffix.lower() not in YOLO_IMAGE_SUFFIXES:
            continue
        relative = image_path.relative_to(images_dir)
        label_path = (path / "labels" / relative).with_suffix(".txt")
        width, height = _image_size(image_path)
        boxes, polygons = _read_labels(label_path, width, height, names)
        first = relative.parts[0] if len(relative.parts) > 1 else ""
        rows.append(
            {
                "image": relative_posix(image_path, path),
                "split": split_name(first) if first else None,
                "label": image_label(b["label"] for b in boxes),
                "boxes": to_json(boxes),
                "polygons": to_json(polygons),
                "width": width,
                "height": height,
            }
        )
    if not rows:
        raise DatasetFormatError(f"{images_dir}: no images ({', '.join(sorted(YOLO_IMAGE_SUFFIXES))}).")
    frame = pd.DataFrame(rows)
    frame = frame.astype({"image": "string", "split": "string", "label": "string", "width": "Int64", "height": "Int64"})
    return Manifest(frame, root=path, name=path.resolve().name)


ADAPTER = DatasetAdapter(name=NAME, layout=LAYOUT, detect=detect, load=load)


def _class_names(path: Path, given: list[str] | None) -> list[str] | None:
    if given is not None:
        if isinstance(given, str) or not all(isinstance(n, str) for n in given):
            raise ConfigError(f"class_names must be a list of strings, got {given!r}.")
        return list(given)
    for name in NAME_FILES:
        if (path / name).is_file():
            lines = (path / name).read_text(encoding="utf-8").splitlines()
            return [line.strip() for line in lines if line.strip()]
    for name in YAML_FILES:
        if (path / name).is_file():
            return _yaml_names(path / name)
    warnings.warn(
        f"{path}: no class names found ({', '.join(NAME_FILES + YAML_FILES)}); the class index is used as the label. "
        "Fix: add classes.txt or pass class_names=[...].",
        stacklevel=3,
    )
    return None


def _yaml_names(yaml_path: Path) -> list[str]:
    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DatasetFormatError(f"{yaml_path}: not valid YAML ({exc}).") from exc
    names: Any = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        return [str(names.get(i, i)) for i in range(max(names) + 1)] if names else []
    if isinstance(names, list):
        return [str(n) for n in names]
    raise DatasetFormatError(
        f"{yaml_path}: 'names' must be a list or a {{index: name}} mapping, got {names!r}. "
        "Fix: add e.g. names: [fracture]."
    )


def _image_size(image_path: Path) -> tuple[int, int]:
    """``(width, height)`` from the header only (Pillow decodes pixels lazily)."""
    try:
        with Image.open(image_path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DatasetFormatError(
            f"{image_path}: cannot read the image size from its header ({exc}); YOLO boxes need it to convert to "
            "pixels. Fix: replace or remove the file."
        ) from exc


def _read_labels(
    label_path: Path, width: int, height: int, names: list[str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    boxes: list[dict[str, Any]] = []
    polygons: list[dict[str, Any]] = []
    if not label_path.is_file():
        return boxes, polygons
    for number, line in enumerate(label_path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{label_path}, line {number}"
        try:
            index = int(fields[0])
            values = [float(v) for v in fields[1:]]
        except ValueError:
            raise DatasetFormatError(
                f"{where}: {line.strip()!r} is not 'class cx cy w h' (an integer class and numbers)."
            ) from None
        if len(values) != 4 and (len(values) < 6 or len(values) % 2):
            raise DatasetFormatError(
                f"{where}: {line.strip()!r} has {len(values)} numbers after the class; expected 4 (cx cy w h) "
                "or an even number >= 6 (polygon x1 y1 x2 y2 ...)."
            )
        if index < 0 or (names is not None and index >= len(names)):
            raise DatasetFormatError(
                f"{where}: class {index} is not one of the {len(names or [])} class names {names}. "
                "Fix: correct the line or the class-name file."
            )
        label = names[index] if names is not None else str(index)
        if len(values) == 4:
            cx, cy, w, h = values
            xyxy = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
        else:
            points = [[values[i] * width, values[i + 1] * height] for i in range(0, len(values), 2)]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            xyxy = [min(xs), min(ys), max(xs), max(ys)]
            polygons.append({"points": points, "label": label})
        boxes.append({"xyxy": xyxy, "label": label})
    return boxes, polygons
