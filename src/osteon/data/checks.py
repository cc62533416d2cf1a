"""``osteon data check``: find what is wrong with a dataset before it wastes a training run.

Each problem becomes a :class:`Finding` that names the file(s), says what is wrong and how to fix it.
Severities (``CODES``):

* **error**: the data is wrong or leaks, and results would be wrong: a file that is missing, does not
  decode or is truncated; one patient or one byte-identical image in two splits; boxes/polygons
  outside the image or degenerate; a mask whose size differs from its image.
* **warning**: likely a problem, worth a look: duplicate files within one split, near-duplicates,
  two label sources that disagree, an all-background mask, images without patient id.
* **info**: worth knowing: images without a split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from osteon.data._progress import track
from osteon.data.boxes import json_list
from osteon.data.hashing import content_hashes, links_from_keys, near_links, perceptual_hashes, union_find
from osteon.data.manifest import Manifest
from osteon.errors import ImageReadError, ImageTooLargeError

Severity = Literal["error", "warning", "info"]

#: Every finding code and its severity.
CODES: dict[str, Severity] = {
    "missing_file": "error",
    "unreadable": "error",
    "truncated": "error",
    "too_large": "error",
    "duplicate_in_two_splits": "error",
    "patient_in_two_splits": "error",
    "box_outside_image": "error",
    "degenerate_box": "error",
    "polygon_outside_image": "error",
    "degenerate_polygon": "error",
    "mask_size_mismatch": "error",
    "duplicate": "warning",
    "near_duplicate": "warning",
    "label_conflict": "warning",
    "empty_mask": "warning",
    "no_patient_id": "warning",
    "no_split": "info",
}
_RANK = {"error": 0, "warning": 1, "info": 2}

#: Annotations may overshoot the image border by this many pixels (float rounding in COCO exports,
#: e.g. FracAtlas' 2880.0000000000005 on a 2880-pixel image) before they count as outside.
EDGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class Finding:
    """One problem found in a dataset.

    Attributes:
        severity: ``"error"`` (results would be wrong), ``"warning"`` (look at it) or ``"info"``.
        code: Machine-readable kind, a key of :data:`CODES` (``"truncated"``, ``"duplicate"`` ...).
        files: The files concerned, as written in the manifest's ``image``/``mask`` column.
        message: What is wrong, in one sentence.
        fix: What to do about it.
    """

    severity: Severity
    code: str
    files: tuple[str, ...]
    message: str
    fix: str

    def to_dict(self) -> dict[str, object]:
        """JSON-able dict (``files`` as a list)."""
        out = asdict(self)
        out["files"] = list(self.files)
        return out


def finding(code: str, files: Iterable[str], message: str, fix: str) -> Finding:
    """A :class:`Finding` with the severity that :data:`CODES` gives ``code``."""
    return Finding(severity=CODES[code], code=code, files=tuple(str(f) for f in files), message=message, fix=fix)


def has_errors(findings: Iterable[Finding]) -> bool:
    """True when any finding is an error (``osteon data check`` then exits with status 1)."""
    return any(f.severity == "error" for f in findings)


def check_dataset(
    manifest: Manifest,
    *,
    near_duplicates: bool = False,
    decode: bool = True,
    progress: bool = True,
    hashes: pd.Series | None = None,
    max_distance: int = 4,
) -> list[Finding]:
    """Check files, duplicates, leakage, labels and annotations of a dataset.

    Args:
        manifest: The dataset.
        near_duplicates: Also look for perceptually similar images (decodes every image).
        decode: Decode every image (``read_image(size_hint=64)``: JPEGs in draft mode) to find truncated
            and corrupt files. False checks only that files exist (fast).
        progress: Draw progress bars on stderr.
        hashes: Precomputed :func:`~osteon.data.hashing.content_hashes`.
        max_distance: Perceptual-hash Hamming distance still called a near-duplicate.

    Returns:
        Findings sorted errors first, then warnings, then info (stable within a severity).

    Example:
        >>> findings = check_dataset(manifest, decode=False, progress=False)  # doctest: +SKIP
        >>> [f.code for f in findings if f.severity == "error"]  # doctest: +SKIP
        ['patient_in_two_splits']
    """
    frame = manifest.frame.reset_index(drop=True)
    images = frame["image"].astype(str).tolist()
    paths = manifest.paths()
    exists = np.array([p.is_file() for p in paths], dtype=bool)
    findings = [
        finding(
            "missing_file",
            [images[i]],
            f"{images[i]}: file not found (looked at {paths[i]}).",
            "Restore the file, or drop its row from the dataset.",
        )
        for i in np.nonzero(~exists)[0]
    ]
    if decode:
        findings += _decode_findings(images, paths, exists, progress=progress)
    if hashes is None:
        hashes = content_hashes(manifest, progress=progress)
    findings += _duplicate_findings(manifest, frame, hashes.reset_index(drop=True))
    if near_duplicates:
        findings += _near_duplicate_findings(manifest, frame, hashes.reset_index(drop=True), max_distance, progress)
    findings += _patient_split_findings(frame)
    findings += _label_conflict_findings(frame)
    findings += _geometry_findings(manifest, frame, exists)
    findings += _mask_findings(manifest, frame, exists)
    findings += _coverage_findings(frame)
    return sorted(findings, key=lambda f: _RANK[f.severity])


# -- files -------------------------------------------------------------------------------------------
def _decode_findings(images: list[str], paths: list[Path], exists: np.ndarray, *, progress: bool) -> list[Finding]:
    from osteon.io import read_image

    out: list[Finding] = []
    todo = [i for i in range(len(paths)) if exists[i]]
    for i in track(todo, total=len(todo), description="decoding", enabled=progress):
        try:
            read_image(paths[i], size_hint=64)
        except ImageTooLargeError as exc:
            out.append(
                finding(
                    "too_large",
                    [images[i]],
                    f"{images[i]}: {exc.problem}",
                    exc.fix or "Downsample the file, or raise max_pixels if you trust it.",
                )
            )
        except Exception as exc:  # a checker reports every failure instead of stopping at the first
            problem = exc.problem if isinstance(exc, ImageReadError) else f"{type(exc).__name__}: {exc}"
            truncated = "truncat" in str(exc).lower()
            out.append(
                finding(
                    "truncated" if truncated else "unreadable",
                    [images[i]],
                    f"{images[i]}: {'truncated file' if truncated else 'does not decode'} ({problem}).",
                    "Re-export or re-download the file from its source, or drop its row."
                    if truncated
                    else "Check the file type and re-export it; drop its row if it cannot be recovered.",
                )
            )
    return out


# -- duplicates & leakage ----------------------------------------------------------------------------
def _duplicate_findings(manifest: Manifest, frame: pd.DataFrame, hashes: pd.Series) -> list[Finding]:
    present = hashes.notna()
    repeated = present & hashes.duplicated(keep=False)
    out: list[Finding] = []
    for digest, rows in frame[repeated].groupby(hashes[repeated], sort=False).groups.items():
        rows = list(rows)
        files = frame.loc[rows, "image"].astype(str).tolist()
        splits = _distinct(frame, "split", rows)
        labels = _distinct(frame, "label", rows)
        label_note = f" Their labels differ ({', '.join(labels)})." if len(labels) > 1 else ""
        if len(splits) > 1:
            out.append(
                finding(
                    "duplicate_in_two_splits",
                    files,
                    f"{len(files)} byte-identical files are in different splits ({', '.join(splits)}): "
                    f"{', '.join(files)}.{label_note} The model is tested on images it trained on.",
                    "Re-split with `osteon data split` (keeps duplicates together), or drop all but one copy.",
                )
            )
        else:
            out.append(
                finding(
                    "duplicate",
                    files,
                    f"{len(files)} byte-identical files (sha256 {str(digest)[:12]}…): {', '.join(files)}.{label_note}",
                    "Keep them in one split (`osteon data split` does), or drop all but one copy.",
                )
            )
    return out


def _near_duplicate_findings(
    manifest: Manifest, frame: pd.DataFrame, hashes: pd.Series, max_distance: int, progress: bool
) -> list[Finding]:
    phashes = perceptual_hashes(manifest, progress=progress).reset_index(drop=True)
    exact = union_find(len(frame), [links_from_keys(hashes)])
    near = union_find(len(frame), [links_from_keys(hashes), near_links(phashes, max_distance=max_distance)])
    out: list[Finding] = []
    for group in pd.unique(near):
        rows = np.nonzero(near == group)[0]
        if len(np.unique(exact[rows])) < 2:  # one image, or byte-identical copies only (reported above)
            continue
        files = frame.loc[rows, "image"].astype(str).tolist()
        splits = _distinct(frame, "split", rows)
        where = f" They are in different splits ({', '.join(splits)})." if len(splits) > 1 else ""
        out.append(
            finding(
                "near_duplicate",
                files,
                f"{len(files)} files look alike (perceptual hash within {max_distance} bits): "
                f"{', '.join(files)}.{where}",
                "Look at them; if they show one exposure, keep them in one split (pass their common id as "
                "patient_id) or drop the copies.",
            )
        )
    return out


def _patient_split_findings(frame: pd.DataFrame) -> list[Finding]:
    if "patient_id" not in frame or "split" not in frame:
        return []
    known = frame[frame["patient_id"].notna() & frame["split"].notna()]
    out: list[Finding] = []
    for patient, rows in known.groupby("patient_id", sort=True).groups.items():
        splits = _distinct(frame, "split", rows)
        if len(splits) < 2:
            continue
        files = frame.loc[list(rows), "image"].astype(str).tolist()
        out.append(
            finding(
                "patient_in_two_splits",
                files,
                f"patient {patient} has images in {', '.join(splits)}: {', '.join(files)}.",
                "Re-split by patient with `osteon data split`, or move all of this patient's images to one split.",
            )
        )
    return out


def _label_conflict_findings(frame: pd.DataFrame) -> list[Finding]:
    if "label" not in frame:
        return []
    out: list[Finding] = []
    for column in sorted(c for c in frame.columns if c.startswith("label_")):
        other = frame[column].astype("string").str.strip()
        label = frame["label"].astype("string").str.strip()
        differ = (label.notna() & other.notna() & (label != other)).fillna(False)
        for i in np.nonzero(differ.to_numpy())[0]:
            image = str(frame.at[i, "image"])
            out.append(
                finding(
                    "label_conflict",
                    [image],
                    f"{image}: label={label.iloc[i]!r} but {column}={other.iloc[i]!r}; 'label' won "
                    f"(the model learns {label.iloc[i]!r}).",
                    "Check the image; correct the wrong source (or set 'label' explicitly) so that they agree.",
                )
            )
    return out


# -- annotations -------------------------------------------------------------------------------------
def _geometry_findings(manifest: Manifest, frame: pd.DataFrame, exists: np.ndarray) -> list[Finding]:
    out: list[Finding] = []
    for i in range(len(frame)):
        boxes = _json_list(frame, "boxes", i)
        polygons = _json_list(frame, "polygons", i)
        if not boxes and not polygons:
            continue
        image = str(frame.at[i, "image"])
        size = _row_size(frame, i) or (image_size(manifest.resolve(image)) if exists[i] else None)
        for k, box in enumerate(boxes):
            out += _box_findings(image, k, box, size)
        for k, polygon in enumerate(polygons):
            out += _polygon_findings(image, k, polygon, size)
    return out


def _box_findings(image: str, k: int, box: object, size: tuple[int, int] | None) -> list[Finding]:
    xyxy = box.get("xyxy") if isinstance(box, dict) else None
    coords = _numbers(xyxy, 4)
    if coords is None or coords[2] <= coords[0] or coords[3] <= coords[1]:
        return [
            finding(
                "degenerate_box",
                [image],
                f"{image}: box #{k} {xyxy!r} is not [x1, y1, x2, y2] with x2 > x1 and y2 > y1.",
                "Fix or delete the box in the annotation file (boxes are xyxy pixels, corners inclusive-exclusive).",
            )
        ]
    if size is None:
        return []
    width, height = size
    x1, y1, x2, y2 = coords
    t = EDGE_TOLERANCE
    if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
        return [
            finding(
                "box_outside_image",
                [image],
                f"{image}: box #{k} {[round(c, 1) for c in coords]} reaches outside the {width}×{height} image.",
                "Check the box's coordinate convention (xyxy vs xywh, normalised vs pixels, EXIF rotation) "
                "and the image size; clip or fix it.",
            )
        ]
    return []


def _polygon_findings(image: str, k: int, polygon: object, size: tuple[int, int] | None) -> list[Finding]:
    points = polygon.get("points") if isinstance(polygon, dict) else None
    array = _points(points)
    if array is None or len(array) < 3:
        return [
            finding(
                "degenerate_polygon",
                [image],
                f"{image}: polygon #{k} has fewer than 3 valid [x, y] points.",
                "Fix or delete the polygon in the annotation file.",
            )
        ]
    if size is None:
        return []
    width, height = size
    t = EDGE_TOLERANCE
    if array.min() < -t or array[:, 0].max() > width + t or array[:, 1].max() > height + t:
        return [
            finding(
                "polygon_outside_image",
                [image],
                f"{image}: polygon #{k} spans x {array[:, 0].min():.1f}..{array[:, 0].max():.1f}, "
                f"y {array[:, 1].min():.1f}..{array[:, 1].max():.1f}, outside the {width}×{height} image.",
                "Check the coordinate convention (pixels vs normalised, EXIF rotation) and the image size.",
            )
        ]
    return []


def _mask_findings(manifest: Manifest, frame: pd.DataFrame, exists: np.ndarray) -> list[Finding]:
    if "mask" not in frame:
        return []
    from osteon.io import read_image

    out: list[Finding] = []
    for i, mask in enumerate(frame["mask"]):
        if not isinstance(mask, str) or not mask:
            continue
        path = manifest.resolve(mask)
        image = str(frame.at[i, "image"])
        if not path.is_file():
            out.append(
                finding(
                    "missing_file",
                    [mask],
                    f"{mask}: mask of {image} not found (looked at {path}).",
                    "Restore the mask file or clear the row's 'mask' entry.",
                )
            )
            continue
        try:
            array = np.asarray(read_image(path).array)
        except Exception as exc:
            out.append(
                finding(
                    "unreadable",
                    [mask],
                    f"{mask}: mask of {image} does not decode ({exc}).",
                    "Re-export the mask as a PNG label map (0 = background).",
                )
            )
            continue
        if not np.any(array):
            out.append(
                finding(
                    "empty_mask",
                    [mask],
                    f"{mask}: mask of {image} is all background (0).",
                    "If the image has a finding, re-export its mask; if not, clear the 'mask' entry.",
                )
            )
        size = _row_size(frame, i) or (image_size(manifest.resolve(image)) if exists[i] else None)
        mask_size = (array.shape[1], array.shape[0]) if array.ndim >= 2 else None
        if size is not None and mask_size is not None and mask_size != size:
            out.append(
                finding(
                    "mask_size_mismatch",
                    [image, mask],
                    f"{mask}: mask is {mask_size[0]}×{mask_size[1]} but {image} is {size[0]}×{size[1]}.",
                    "Re-export the mask at the image's size (masks are pixel-aligned label maps).",
                )
            )
    return out


def _coverage_findings(frame: pd.DataFrame) -> list[Finding]:
    out: list[Finding] = []
    no_patient = frame["patient_id"].isna() if "patient_id" in frame else pd.Series(True, index=frame.index)
    if no_patient.any():
        files = frame.loc[no_patient, "image"].astype(str).tolist()
        out.append(
            finding(
                "no_patient_id",
                files,
                f"{len(files)} of {len(frame)} images have no patient_id ({_some(files)}): splits cannot keep a "
                "patient's images together, so results may be optimistic.",
                "Add a 'patient_id' column (from DICOM headers or the source's metadata).",
            )
        )
    no_split = frame["split"].isna() if "split" in frame else pd.Series(True, index=frame.index)
    if no_split.any():
        files = frame.loc[no_split, "image"].astype(str).tolist()
        out.append(
            finding(
                "no_split",
                files,
                f"{len(files)} of {len(frame)} images have no split ({_some(files)}).",
                "Run `osteon data split PATH --out splits.csv` for patient-level, leakage-free splits.",
            )
        )
    return out


# -- helpers -----------------------------------------------------------------------------------------
def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the file header without decoding pixels (EXIF rotation applied);
    ``None`` when the header cannot be read."""
    try:
        from PIL import Image as PILImage

        with PILImage.open(path) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientation: rotated by 90°
                width, height = height, width
            return int(width), int(height)
    except Exception:
        pass
    try:
        import pydicom

        header = pydicom.dcmread(path, stop_before_pixels=True)
        return int(header.Columns), int(header.Rows)
    except Exception:
        return None


def _row_size(frame: pd.DataFrame, i: int) -> tuple[int, int] | None:
    if "width" not in frame or "height" not in frame:
        return None
    width, height = frame.at[i, "width"], frame.at[i, "height"]
    if pd.isna(width) or pd.isna(height):
        return None
    return int(width), int(height)


def _json_list(frame: pd.DataFrame, column: str, i: int) -> list[object]:
    if column not in frame:
        return []
    return json_list(frame.at[i, column], image=str(frame.at[i, "image"]), column=column)


def _numbers(values: object, n: int) -> list[float] | None:
    if not isinstance(values, list | tuple) or len(values) != n:
        return None
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return numbers if all(math.isfinite(v) for v in numbers) else None


def _points(points: object) -> np.ndarray | None:
    if not isinstance(points, list):
        return None
    rows = [_numbers(p, 2) for p in points]
    if any(r is None for r in rows):
        return None
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def _distinct(frame: pd.DataFrame, column: str, rows: Iterable[int]) -> list[str]:
    if column not in frame:
        return []
    return sorted({str(v) for v in frame.loc[list(rows), column] if not pd.isna(v)})


def _some(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" ... (+{len(items) - n} more)" if len(items) > n else "")
