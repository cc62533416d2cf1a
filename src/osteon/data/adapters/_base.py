"""What every dataset adapter provides, and the small helpers they share.

An adapter reads one native on-disk layout and returns a :class:`~osteon.data.manifest.Manifest`;
it never checks, splits or rewrites data (that is ``osteon data check`` / ``osteon data split``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osteon.data.manifest import Manifest

#: File suffixes (lower case) that adapters treat as images when they list folders.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".dcm", ".tif", ".tiff", ".bmp"})

#: Folder / CSV split names and the Manifest split they mean.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


#: Adapter options reachable from the CLI (``osteon train`` and ``osteon data summary|check|split``, flags
#: ``--image-column`` ...) and from a training YAML (``image_column: ...``), with their help text. Each is a
#: keyword-only parameter of the adapters named at the start of its help; ``load_dataset`` refuses one that
#: the chosen format does not take. All are text.
DATASET_OPTIONS: dict[str, str] = {
    "image_column": "csv: column of image paths (default: the first of image, path, file, filename, filepath ...)",
    "image_template": "csv: build each image path from columns instead, e.g. 'images/{filestem}.png'",
    "images_root": "csv, coco: folder the image paths are relative to (relative to the CSV's / JSON's folder)",
    "label_column": "csv: column read as the class name or grade ('label')",
    "patient_column": "csv: column read as the patient id ('patient_id'; splits group by it)",
    "target_column": "csv: column read as the number to regress ('target')",
    "split_column": "csv: column read as the split (train/val/test and their aliases)",
    "patient_pattern": "class_folder: regex with a named group 'patient_id' searched in each file stem",
}


@dataclass(frozen=True)
class DatasetAdapter:
    """One dataset format: how to recognise it and how to read it.

    Attributes:
        name: Registered format name (``--format NAME``).
        layout: One line describing the expected layout, shown when detection fails.
        detect: ``detect(path) -> bool``; cheap (reads headers or a few files, never images).
        load: ``load(path, **options) -> Manifest``; options are keyword-only parameters of this
            function, so that :func:`osteon.data.adapters.load_dataset` can validate them.
    """

    name: str
    layout: str
    detect: Callable[[Path], bool]
    load: Callable[..., Manifest]


def split_name(folder: str) -> str | None:
    """Manifest split (``train``/``val``/``test``) for a folder or CSV value, or None when it is not one."""
    return SPLIT_ALIASES.get(folder.strip().lower())


def to_json(items: Iterable[dict[str, Any]]) -> str:
    """Compact JSON list, the format of the ``boxes`` / ``polygons`` columns."""
    return json.dumps(list(items), separators=(",", ":"))


def image_label(labels: Iterable[str]) -> str:
    """Image-level label of a detection image: the sorted distinct box labels joined by ``|`` ("" if none)."""
    return "|".join(sorted(set(labels)))


def relative_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (Manifests are portable between systems)."""
    return Path(os.path.relpath(path, root)).as_posix()


def is_dicom_file(path: Path) -> bool:
    """True when the file carries the DICOM Part 10 preamble (``DICM`` at byte 128), whatever its name."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def list_images(folder: Path, *, suffixes: frozenset[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly in ``folder`` (not recursive), sorted by name; hidden files skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    )


def walk_files(folder: Path) -> Iterable[Path]:
    """Every non-hidden file under ``folder``, depth first, in sorted order (deterministic row order)."""
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(current) / name
