"""Phantom images as DICOM files: a synthetic archive for the PACS bridge, de-identification and UID tests.

Each PNG of a phantom Manifest becomes one Digital X-Ray (For Presentation) object, 16-bit MONOCHROME2,
explicit VR little endian. One study per patient (both knees), one series per side. The headers carry made-up
identifiers of every kind a real archive has (names, IDs, dates, institution, a private tag), so that a
de-identifier has something to remove. Same inputs and seed → the same UIDs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image as PILImage

from osteon.data.manifest import Manifest


def _uid(seed: int, *parts: object) -> Any:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["osteon-phantom", str(seed), *map(str, parts)]))


def write_phantom_dicoms(manifest: Manifest, out: str | Path, *, seed: int = 0, limit: int | None = None) -> list[Path]:
    """Write the manifest's images as DICOM files under ``out/<patient_id>/<image stem>.dcm``.

    Args:
        manifest: A phantom Manifest (columns ``image``, ``patient_id``, optional ``laterality``, ``age``, ``sex``).
        out: Folder to write into (created).
        seed: Changes every UID.
        limit: Write only the first ``limit`` rows.

    Returns:
        The written paths, in row order.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian

    out = Path(out)
    frame: pd.DataFrame = manifest.frame if limit is None else manifest.frame.head(limit)
    written: list[Path] = []
    for i, row in enumerate(frame.itertuples(index=False)):
        patient = str(row.patient_id)
        side = str(getattr(row, "laterality", "") or "")
        array = np.asarray(PILImage.open(manifest.resolve(row.image)))
        if array.dtype != np.uint16:
            array = (array.astype(np.float64) / max(1, np.iinfo(array.dtype).max) * 65535).astype(np.uint16)
        day = 1 + int(hashlib.sha256(patient.encode()).hexdigest(), 16) % 28
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
        meta.MediaStorageSOPInstanceUID = _uid(seed, patient, side, i, "sop")
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = _uid(seed, patient, "study")
        ds.SeriesInstanceUID = _uid(seed, patient, side, "series")
        ds.PatientName = f"Phantom^{patient}"
        ds.PatientID = patient
        ds.PatientBirthDate = f"1950{1 + day % 12:02d}{day:02d}"
        ds.PatientSex = str(getattr(row, "sex", "O") or "O")
        ds.OtherPatientIDs = f"MRN-{patient}"
        ds.StudyDate = f"202401{day:02d}"
        ds.SeriesDate = ds.StudyDate
        ds.ContentDate = ds.StudyDate
        ds.StudyTime = "101500"
        ds.ContentTime = "101500"
        ds.AccessionNumber = f"ACC{patient}"
        ds.StudyID = "1"
        ds.StudyDescription = f"Knee radiograph of {patient}"
        ds.ReferringPhysicianName = "Referrer^Doctor"
        ds.InstitutionName = "Osteon Phantom Hospital"
        ds.InstitutionAddress = "1 Phantom Street, Nowhere"
        ds.StationName = "PHANTOM-DX-1"
        ds.OperatorsName = "Tech^Radiographer"
        ds.Modality = "DX"
        ds.SeriesNumber = 1 if side == "L" else 2
        ds.InstanceNumber = 1
        ds.Manufacturer = "Osteon phantom"
        ds.BodyPartExamined = "KNEE"
        ds.ViewPosition = "AP"
        ds.ImageLaterality = side if side in ("L", "R") else "U"
        ds.Laterality = ds.ImageLaterality
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PatientOrientation = ["A", "F"]
        ds.BurnedInAnnotation = "NO"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = (int(n) for n in array.shape[:2])
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.PixelSpacing = [0.2, 0.2]
        ds.ImagerPixelSpacing = [0.2, 0.2]
        ds.PixelIntensityRelationship = "LIN"
        ds.PixelIntensityRelationshipSign = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "US"
        ds.PixelData = np.ascontiguousarray(array).tobytes()
        block = ds.private_block(0x0099, "OSTEON PHANTOM", create=True)
        block.add_new(0x01, "LO", f"private note on {patient}")
        path = out / patient / f"{Path(str(row.image)).stem}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written
