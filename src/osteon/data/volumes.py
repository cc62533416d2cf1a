"""Volumes (CT, MRI) with spacing and orientation: reading, canonical orientation, resampling, patches.

A :class:`Volume` is ``array[d, h, w]`` (slice axis first, as :class:`osteon.io.Image`) with ``spacing`` in mm per
axis and ``affine``: the 4×4 matrix taking ``[d, h, w, 1]`` to RAS+ mm (NIfTI's world convention). Sources:

* NIfTI files (nibabel, through :func:`osteon.io.read_nifti`);
* a DICOM series: a folder of single-frame files (or a list of files) of one SeriesInstanceUID, sorted along the
  slice normal by ImagePositionPatient; missing slices, mixed spacing or orientation, duplicate positions and
  several series in one folder are refused with a message naming the files;
* a multi-frame DICOM file (spacing from its header; axis-aligned affine when it has no per-frame geometry).

A 2D image given where a volume is needed raises :class:`VolumeError` saying what to pass instead.

:func:`to_canonical` reorients (axis permutations and flips only, no interpolation: nibabel's orientation
tools) to Osteon's canonical axial layout ``("S", "P", "L")``: slices run inferior → superior, rows anterior →
posterior, columns patient right → left (the radiological display of an axial slice). :func:`resample` changes
the spacing (scipy, voxel centres aligned, linear for images and nearest for label maps) and updates the affine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from osteon.errors import ImageReadError, OsteonError

CANONICAL = ("S", "P", "L")  # codes of the array axes (d, h, w) after to_canonical


class VolumeError(OsteonError, ValueError):
    """A volume cannot be built: a 2D file, missing slices, mixed spacing or orientation in one series ..."""


@dataclass(frozen=True)
class Volume:
    """One 3D image.

    Attributes:
        array: ``(D, H, W)`` voxels (float32 for images, integer for label maps).
        spacing: ``(d, h, w)`` mm between voxel centres along each array axis.
        affine: ``(4, 4)`` voxel index ``[d, h, w, 1]`` → RAS+ mm.
        source: The file or folder it came from.
        meta: Modality, series UID, number of files ...
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    source: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def axcodes(self) -> tuple[str, ...]:
        """Anatomical direction each array axis runs towards, e.g. ``("S", "P", "L")``."""
        import nibabel as nib

        return tuple(nib.aff2axcodes(self.affine))

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres (mm³ / 1000)."""
        return float(np.prod(self.spacing)) / 1000.0

    def volume_ml(self, label: int | None = None) -> float:
        """Volume of the voxels that are non-zero (or equal ``label``) in mL."""
        mask = self.array != 0 if label is None else self.array == label
        return float(mask.sum()) * self.voxel_ml


# -- reading ------------------------------------------------------------------------------------------------------
def read_volume(source: str | Path | Sequence[str | Path], *, series_uid: str | None = None) -> Volume:
    """Read a NIfTI file, a DICOM series (folder or file list) or a multi-frame DICOM file as a :class:`Volume`.

    Raises:
        VolumeError: a 2D image, or a series that does not make one regular volume (see the module docstring).
        ImageReadError: an unreadable file.
    """
    if not isinstance(source, str | Path):
        return read_dicom_series([Path(p) for p in source], series_uid=series_uid)
    path = Path(source)
    if path.is_dir():
        return read_dicom_series(sorted(p for p in path.rglob("*") if p.is_file()), series_uid=series_uid)
    from osteon.io import read_image

    image = read_image(path)
    if not image.is_volume:
        raise VolumeError(
            f"{path}: is a 2D image {image.array.shape}, not a volume. Fix: pass a NIfTI file, a folder holding one "
            "DICOM series, or a multi-frame DICOM file (or use a 2D task for 2D images)."
        )
    array = np.asarray(image.array)
    spacing = tuple(float(s) for s in (image.spacing or (1.0, 1.0, 1.0)))
    if len(spacing) == 2:
        spacing = (1.0, *spacing)
    if image.orientation is not None:
        affine = np.asarray(image.orientation, dtype=np.float64)
    else:  # multi-frame DICOM without per-frame geometry: axis-aligned, LPS of DICOM → RAS
        affine = np.diag([-spacing[2], -spacing[1], spacing[0], 1.0])[:, [2, 1, 0, 3]]
    meta = {"modality": image.modality, "series_uid": image.series_uid, "format": image.extra.get("format")}
    return Volume(array, spacing, affine, path, meta)  # type: ignore[arg-type]


def read_dicom_series(files: Sequence[Path], *, series_uid: str | None = None) -> Volume:
    """Stack single-frame DICOM files of one series into a :class:`Volume` sorted along the slice normal.

    Raises:
        VolumeError: no DICOM files, several series (without ``series_uid``), inconsistent size, orientation or
            pixel spacing, duplicate positions, or missing slices (a gap larger than 1.5× the usual step).
    """
    import pydicom

    headers = []
    for path in files:
        try:
            with open(path, "rb") as handle:
                if handle.read(132)[128:132] != b"DICM":
                    continue
            headers.append((path, pydicom.dcmread(path, stop_before_pixels=True)))
        except (OSError, pydicom.errors.InvalidDicomError):
            continue
    if not headers:
        raise VolumeError(f"no DICOM files among {len(files)} file(s) (e.g. {files[0] if files else '-'}).")
    by_series: dict[str, list] = {}
    for path, ds in headers:
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((path, ds))
    if series_uid is not None:
        if series_uid not in by_series:
            raise VolumeError(f"series {series_uid} not found; the files hold {sorted(by_series)}.")
        chosen = by_series[series_uid]
    elif len(by_series) > 1:
        listed = "; ".join(f"{uid or '(none)'}: {len(v)} files" for uid, v in by_series.items())
        raise VolumeError(f"the files hold {len(by_series)} series ({listed}). Fix: pass series_uid=... or one folder.")
    else:
        chosen = next(iter(by_series.values()))
    return _stack_series(chosen)


def _stack_series(items: list) -> Volume:
    from osteon.io import read_dicom

    first_path, first = items[0]
    for key in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        missing = [p for p, ds in items if key not in ds]
        if missing:
            raise VolumeError(f"{missing[0]}: has no {key}, so the slices cannot be placed in space.")
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    shape0 = (int(first.Rows), int(first.Columns))
    spacing0 = tuple(float(v) for v in first.PixelSpacing)
    for path, ds in items:
        if (int(ds.Rows), int(ds.Columns)) != shape0:
            raise VolumeError(f"{path}: is {ds.Rows}×{ds.Columns} but {first_path} is {shape0[0]}×{shape0[1]}.")
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], iop, atol=1e-4):
            raise VolumeError(f"{path}: has another ImageOrientationPatient than {first_path} (mixed orientations).")
        if not np.allclose([float(v) for v in ds.PixelSpacing], spacing0, rtol=1e-4):
            raise VolumeError(
                f"{path}: PixelSpacing {list(ds.PixelSpacing)} differs from {list(spacing0)} in {first_path} "
                "(mixed spacing in one series). Fix: split the series or resample the slices first."
            )
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in items])
    along = positions @ normal
    order = np.argsort(along)
    along, positions = along[order], positions[order]
    items = [items[i] for i in order]
    steps = np.diff(along)
    if len(steps) and np.any(steps < 1e-3):
        k = int(np.argmin(steps))
        raise VolumeError(f"{items[k][0]} and {items[k + 1][0]}: two slices at the same position (duplicates).")
    step = float(np.median(steps)) if len(steps) else float(first.get("SliceThickness", 1.0) or 1.0)
    gaps = np.flatnonzero(steps > 1.5 * step)
    if len(gaps):
        k = int(gaps[0])
        missing = round(steps[k] / step) - 1
        raise VolumeError(
            f"about {missing} slice(s) missing between {items[k][0].name} and {items[k + 1][0].name} "
            f"({steps[k]:.2f} mm apart, the series' step is {step:.2f} mm). Fix: restore the missing files."
        )
    if len(steps) and np.ptp(steps) > 0.01 * step + 1e-3:
        raise VolumeError(
            f"slice steps vary from {steps.min():.3f} to {steps.max():.3f} mm in one series (mixed spacing). "
            "Fix: resample the series to one slice step first."
        )
    array = np.stack([np.asarray(read_dicom(path).array, dtype=np.float32) for path, _ in items])
    # DICOM patient coordinates are LPS; voxel (d, h, w) sits at P0 + d·step·n + h·Δr·col_dir + w·Δc·row_dir.
    lps = np.eye(4)
    lps[:3, 0] = normal * step
    lps[:3, 1] = col_dir * spacing0[0]
    lps[:3, 2] = row_dir * spacing0[1]
    lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    meta = {
        "modality": str(first.get("Modality", "")) or None,
        "series_uid": str(first.get("SeriesInstanceUID", "")) or None,
        "files": len(items),
        "format": "dicom-series",
    }
    return Volume(array, (step, *spacing0), affine, items[0][0].parent, meta)  # type: ignore[arg-type]


# -- orientation and resampling ---------------------------------------------------------------------------------------
def to_canonical(volume: Volume, codes: Sequence[str] = CANONICAL) -> Volume:
    """Permute and flip the axes so they run towards ``codes`` (default ``("S", "P", "L")``); no interpolation.

    The affine is updated so every voxel keeps its world position (nibabel ``ornt_transform`` /
    ``apply_orientation`` / ``inv_ornt_aff``).
    """
    import nibabel.orientations as nio

    current = nio.io_orientation(volume.affine)
    target = nio.axcodes2ornt(tuple(codes))
    transform = nio.ornt_transform(current, target)
    array = np.ascontiguousarray(nio.apply_orientation(volume.array, transform))
    affine = volume.affine @ nio.inv_ornt_aff(transform, volume.array.shape)
    spacing = tuple(float(np.linalg.norm(affine[:3, i])) for i in range(3))
    return replace(volume, array=array, affine=affine, spacing=spacing)  # type: ignore[arg-type]


def resample(volume: Volume, spacing: Sequence[float], *, label: bool = False) -> Volume:
    """Resample to ``spacing`` mm (``(d, h, w)``), keeping the volume's extent and voxel-centre alignment.

    Voxel ``i'`` of the output sits at input coordinate ``i = s·i' + (s − 1)/2`` with ``s = new / old`` spacing
    (the centres of the first and last voxels span the same extent). Images: linear interpolation (float32);
    label maps (``label=True``): nearest neighbour, dtype kept.
    """
    from scipy.ndimage import affine_transform

    new = np.asarray(spacing, dtype=np.float64)
    old = np.asarray(volume.spacing, dtype=np.float64)
    if new.shape != (3,) or not np.all(new > 0):
        raise VolumeError(f"spacing must be three positive numbers in mm (d, h, w); got {list(spacing)}.")
    scale = new / old
    shape = np.maximum(1, np.round(np.asarray(volume.shape) / scale)).astype(int)
    offset = (scale - 1) / 2
    source = volume.array if label else volume.array.astype(np.float32, copy=False)
    array = affine_transform(
        source, scale, offset=offset, output_shape=tuple(shape), order=0 if label else 1, mode="nearest"
    )
    step = np.eye(4)
    step[:3, :3] = np.diag(scale)
    step[:3, 3] = offset
    return replace(volume, array=array, spacing=tuple(float(s) for s in new), affine=volume.affine @ step)  # type: ignore[arg-type]


def world_position(volume: Volume, index: Sequence[float]) -> np.ndarray:
    """RAS+ mm of voxel ``(d, h, w)``."""
    return (volume.affine @ np.array([*index, 1.0]))[:3]


def check_pair(image: Volume, labels: Volume) -> None:
    """Refuse an image and a label map that are not on the same voxel grid (shape and affine)."""
    if image.shape != labels.shape or not np.allclose(image.affine, labels.affine, atol=1e-3):
        raise VolumeError(
            f"{labels.source}: label map {labels.shape} is not on the grid of {image.source} {image.shape} "
            "(shape or affine differ). Fix: resample the labels onto the image (nearest neighbour)."
        )


def read_label_volume(path: str | Path) -> Volume:
    """A label map as integers (float NIfTI label maps such as 2.0/3.0 are rounded, with a check)."""
    volume = read_volume(path)
    values = volume.array
    if values.dtype.kind == "f":
        rounded = np.rint(values)
        if not np.allclose(values, rounded, atol=1e-3):
            raise ImageReadError(Path(path), "holds non-integer values; it is not a label map.")
        values = rounded.astype(np.int16)
    return replace(volume, array=values)


__all__ = [
    "CANONICAL",
    "Volume",
    "VolumeError",
    "check_pair",
    "read_dicom_series",
    "read_label_volume",
    "read_volume",
    "resample",
    "to_canonical",
    "world_position",
]
