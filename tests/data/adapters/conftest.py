"""Builders of tiny synthetic datasets in every layout the adapters read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def make_image(path: Path, size: tuple[int, int] = (32, 24), mode: str = "L") -> Path:
    """Write a small image of ``size`` = (width, height) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=128 if mode == "L" else (128, 64, 32)).save(path)
    return path


def write_dicom(path: Path, **tags: object) -> Path:
    """Write a 4×6 (rows × cols) MONOCHROME2 DICOM file with the given header keywords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = 4, 6
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.arange(24, dtype=np.uint16).reshape(4, 6).tobytes()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def coco_dataset(tmp_path: Path) -> Path:
    """COCO folder: annotations/instances.json + images/{a,b,c}.png; category ids 0 and 7.

    a.png (40×30): box [10, 5, 20, 10] "lesion" with a 2-part polygon, box [0, 0, 4, 6] "implant".
    b.png (50×20): box [1.5, 2.5, 3, 4] "lesion".   c.png (16×16): no annotation.
    """
    for name, size in {"a.png": (40, 30), "b.png": (50, 20), "c.png": (16, 16)}.items():
        make_image(tmp_path / "images" / name, size)
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 50, "height": 20},
            {"id": 3, "file_name": "c.png", "width": 16, "height": 16},
        ],
        "annotations": [
            {
                "id": 11,
                "image_id": 1,
                "category_id": 0,
                "bbox": [10, 5, 20, 10],
                "segmentation": [[10, 5, 30, 5, 30, 15], [12, 6, 14, 6, 14, 8, 12, 8]],
            },
            {"id": 12, "image_id": 1, "category_id": 7, "bbox": [0, 0, 4, 6], "segmentation": []},
            {
                "id": 13,
                "image_id": 2,
                "category_id": 0,
                "bbox": [1.5, 2.5, 3, 4],
                "segmentation": [[1.5, 2.5, 4.5, 2.5, 4.5, 6.5]],
            },
        ],
        "categories": [{"id": 0, "name": "lesion"}, {"id": 7, "name": "implant"}],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances.json").write_text(json.dumps(coco))
    return tmp_path


@pytest.fixture
def yolo_dataset(tmp_path: Path) -> Path:
    """YOLO folder with train/val splits and classes.txt = [fracture, implant].

    images/train/a.png 200×100: ``0 0.5 0.5 0.2 0.4`` and ``1 0.1 0.2 0.1 0.2``.
    images/train/b.png 80×60: empty label file.   images/val/c.jpg 50×40: no label file.
    """
    make_image(tmp_path / "images" / "train" / "a.png", (200, 100))
    make_image(tmp_path / "images" / "train" / "b.png", (80, 60))
    make_image(tmp_path / "images" / "val" / "c.jpg", (50, 40), mode="RGB")
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.1 0.2\n")
    (tmp_path / "labels" / "train" / "b.txt").write_text("")
    (tmp_path / "classes.txt").write_text("fracture\nimplant\n")
    return tmp_path


@pytest.fixture
def class_folder_dataset(tmp_path: Path) -> Path:
    """train/{0,1}/ and valid/{0,1}/ with OAI-style stems: 5 images, 3 patients."""
    stems = {
        ("train", "0"): ["1000001L", "1000001R"],
        ("train", "1"): ["1000002L"],
        ("valid", "0"): ["1000003R"],
        ("valid", "1"): ["1000003L"],
    }
    for (split, label), names in stems.items():
        for stem in names:
            make_image(tmp_path / split / label / f"{stem}.png")
    return tmp_path


@pytest.fixture
def dicom_tree(tmp_path: Path) -> Path:
    """Two patients, two series: P1/S1/{1,2,3}.dcm (CT, 3 slices) and P2/S2/{img1,img2} (no extension)."""
    study1, study2, series1, series2 = (generate_uid() for _ in range(4))
    for i in (3, 1, 2):  # written out of order: per-series rows must sort by InstanceNumber
        write_dicom(
            tmp_path / "P1" / "S1" / f"{i}.dcm",
            PatientID="P1",
            StudyInstanceUID=study1,
            SeriesInstanceUID=series1,
            InstanceNumber=i,
            Modality="CT",
            PatientAge="045Y",
            PatientSex="F",
            BodyPartExamined="KNEE",
            PixelSpacing=[0.5, 0.25],
        )
    for i in (1, 2):
        write_dicom(
            tmp_path / "P2" / "S2" / f"img{i}",
            PatientID="P2",
            StudyInstanceUID=study2,
            SeriesInstanceUID=series2,
            InstanceNumber=i,
            PatientAge="006M",
            PatientSex="M",
            ViewPosition="PA",
            ImageLaterality="L",
            ImagerPixelSpacing=[0.1, 0.1],
        )
    (tmp_path / "notes.txt").write_text("not a DICOM file")
    return tmp_path


@pytest.fixture
def mini_fracatlas(tmp_path: Path) -> Path:
    """A 4-image FracAtlas in the native layout, with the release's quirks reproduced.

    F1 (fractured, hand, frontal, train, 1 box), F2 (fractured folder but ``fractured=0`` in the CSV;
    hand+shoulder+mixed; frontal+lateral; test; 2 boxes), N1 (non-fractured, leg, oblique),
    N2 (non-fractured, hip). COCO category id 0.
    """
    root = tmp_path / "FracAtlas"
    for folder, names in {"Fractured": ["F1", "F2"], "Non_fractured": ["N1", "N2"]}.items():
        for name in names:
            make_image(root / "images" / folder / f"{name}.jpg")
    columns = [
        "image_id",
        "hand",
        "leg",
        "hip",
        "shoulder",
        "mixed",
        "hardware",
        "multiscan",
        "fractured",
        "fracture_count",
        "frontal",
        "lateral",
        "oblique",
    ]
    rows = [
        ["F1.jpg", 1, 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0],
        ["F2.jpg", 1, 0, 0, 1, 1, 0, 1, 0, 2, 1, 1, 0],
        ["N1.jpg", 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ["N2.jpg", 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0],
    ]
    pd.DataFrame(rows, columns=columns).to_csv(root / "dataset.csv", index=False, lineterminator="\r\n")
    coco = {
        "info": {"description": "my-project-name"},
        "images": [
            {"id": 5, "file_name": "F1.jpg", "width": 320, "height": 240},
            {"id": 6, "file_name": "F2.jpg", "width": 240, "height": 320},
        ],
        "annotations": [
            {
                "id": 0,
                "image_id": 5,
                "category_id": 0,
                "bbox": [1.25, 2.5, 10.0, 20.0],
                "segmentation": [[1.25, 2.5, 11.25, 2.5, 11.25, 22.5]],
            },
            {"id": 1, "image_id": 6, "category_id": 0, "bbox": [0, 0, 5, 5], "segmentation": [[0, 0, 5, 0, 5, 5]]},
            {"id": 2, "image_id": 6, "category_id": 0, "bbox": [7, 7, 1, 1], "segmentation": [[7, 7, 8, 7, 8, 8]]},
        ],
        "categories": [{"id": 0, "name": "fractured"}],
    }
    (root / "Annotations" / "COCO JSON").mkdir(parents=True)
    (root / "Annotations" / "COCO JSON" / "COCO_fracture_masks.json").write_text(json.dumps(coco))
    split_dir = root / "Utilities" / "Fracture Split"
    split_dir.mkdir(parents=True)
    pd.DataFrame({"image_id": ["F1.jpg"]}).to_csv(split_dir / "train.csv", index=False)
    pd.DataFrame({"image_id": []}).to_csv(split_dir / "valid.csv", index=False)
    pd.DataFrame({"image_id": ["F2.jpg"]}).to_csv(split_dir / "test.csv", index=False)
    return root


@pytest.fixture
def image_writer() -> Callable[..., Path]:
    """:func:`make_image`, for tests that build their own layout."""
    return make_image


@pytest.fixture
def dicom_writer() -> Callable[..., Path]:
    """:func:`write_dicom`, for tests that build their own DICOM files."""
    return write_dicom
