"""The ``Image`` record: what every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Image:
    """One decoded image (or volume) with the metadata that matters for learning.

    Attributes:
        array: Pixel data at full depth, never rescaled to 8 bit. Shapes:
            ``(H, W)`` grayscale, ``(H, W, 3)`` RGB, ``(F, H, W)`` / ``(F, H, W, 3)`` multi-frame
            DICOM, ``(D, H, W)`` volumes (NIfTI, slice axis first). DICOM arrays have the
            modality LUT (rescale slope/intercept) applied, and MONOCHROME1 already inverted so
            that higher values are always brighter (denser bone is brighter).
        path: The file it came from.
        spacing: Pixel spacing in mm, ``(row, col)`` for 2D or ``(slice, row, col)`` for volumes;
            ``None`` when the file does not state it.
        modality: DICOM modality (``"CR"``, ``"DX"``, ``"CT"``, ``"MR"``...) or ``None``.
        photometric: Photometric interpretation after conversion (``"MONOCHROME2"`` or ``"RGB"``).
        bits_stored: Significant bits per sample of the source (8, 12, 16 ...).
        window_center: VOI window centre from the file, in the units of ``array``.
        window_width: VOI window width from the file.
        laterality: ``"L"``, ``"R"`` or ``None``.
        view_position: e.g. ``"AP"``, ``"PA"``, ``"LAT"``.
        body_part: DICOM BodyPartExamined or ``None``.
        patient_id, study_uid, series_uid: identifiers from the headers, when present.
        orientation: For volumes, the 4×4 affine (voxel → RAS mm); ``None`` for 2D.
        extra: Anything else a reader found worth keeping (transfer syntax, frame count ...).
    """

    array: np.ndarray
    path: Path
    spacing: tuple[float, ...] | None = None
    modality: str | None = None
    photometric: str = "MONOCHROME2"
    bits_stored: int = 8
    window_center: float | None = None
    window_width: float | None = None
    laterality: str | None = None
    view_position: str | None = None
    body_part: str | None = None
    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    orientation: np.ndarray | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def is_volume(self) -> bool:
        """True for NIfTI volumes and multi-frame DICOM (the first axis is slices/frames)."""
        gray = self.photometric != "RGB"
        return self.array.ndim == (3 if gray else 4)

    @property
    def height(self) -> int:
        return int(self.array.shape[-2] if self.photometric != "RGB" else self.array.shape[-3])

    @property
    def width(self) -> int:
        return int(self.array.shape[-1] if self.photometric != "RGB" else self.array.shape[-2])
