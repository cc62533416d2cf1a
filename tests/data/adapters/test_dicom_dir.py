"""dicom_dir adapter: headers only, files found by preamble, per-file and per-series rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from pydicom.errors import InvalidDicomError
from pydicom.uid import generate_uid

from osteon.data.adapters import dicom_dir, load_dataset
from osteon.data.adapters.dicom_dir import parse_age
from osteon.errors import ConfigError, DatasetFormatError


@pytest.mark.shared_data
def test_ddh_xray_folder(shared_data: Path) -> None:
    folder = shared_data / "ddh_pelvis_xray_dicom" / "dicoms" / "xray"
    manifest = load_dataset(folder)
    frame = manifest.frame
    assert len(frame) == 10
    assert set(frame["image"]) == {p.name for p in folder.glob("*.dcm")}
    # The RadOSS headers set PatientID to the file stem (PROVENANCE.md: synthetic headers).
    assert (frame["patient_id"] == frame["image"].str.removesuffix(".dcm")).all()
    assert (frame["modality"] == "DX").all()
    assert (frame["width"] == 331).all() and (frame["height"] == 331).all()
    assert frame["study_id"].nunique() == 10 and frame["series_uid"].nunique() == 10


@pytest.mark.shared_data
def test_ddh_root_is_detected_as_dicom_dir(shared_data: Path) -> None:
    root = shared_data / "ddh_pelvis_xray_dicom"
    manifest = load_dataset(root)  # the JPEGs and JSONs beside the DICOMs are not rows
    assert len(manifest) == 10 and manifest.frame["image"].str.startswith("dicoms/xray/").all()


def test_two_patients_two_series(dicom_tree: Path) -> None:
    assert dicom_dir.detect(dicom_tree)
    frame = load_dataset(dicom_tree).frame.set_index("image")
    assert sorted(frame.index) == ["P1/S1/1.dcm", "P1/S1/2.dcm", "P1/S1/3.dcm", "P2/S2/img1", "P2/S2/img2"]
    p1, p2 = frame.loc["P1/S1/2.dcm"], frame.loc["P2/S2/img1"]
    assert (p1["patient_id"], p1["modality"], p1["sex"], p1["age"], p1["body_part"]) == ("P1", "CT", "F", 45.0, "KNEE")
    assert (p1["spacing_row"], p1["spacing_col"], p1["instance_number"]) == (0.5, 0.25, 2)
    assert (p2["patient_id"], p2["sex"], p2["age"], p2["view"], p2["laterality"]) == ("P2", "M", 0.5, "PA", "L")
    assert p2["spacing_row"] == 0.1  # ImagerPixelSpacing when PixelSpacing is absent
    assert (p1["width"], p1["height"]) == (6, 4)
    assert pd.isna(p1["view"]) and pd.isna(p2["body_part"])
    assert frame["study_id"].nunique() == 2 and frame["series_uid"].nunique() == 2


def test_per_series(dicom_tree: Path) -> None:
    frame = load_dataset(dicom_tree, per_series=True).frame.set_index("image")
    assert sorted(frame.index) == ["P1/S1", "P2/S2"]
    assert frame.at["P1/S1", "n_slices"] == 3 and frame.at["P2/S2", "n_slices"] == 2
    assert frame.at["P1/S1", "patient_id"] == "P1" and frame.at["P2/S2", "view"] == "PA"


def test_per_series_sharing_a_folder_uses_first_file(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    series_a, series_b = generate_uid(), generate_uid()
    for name, series, number in [("z.dcm", series_a, 1), ("a.dcm", series_a, 2), ("m.dcm", series_b, 1)]:
        dicom_writer(tmp_path / "mixed" / name, PatientID="P9", SeriesInstanceUID=series, InstanceNumber=number)
    frame = dicom_dir.load(tmp_path, per_series=True).frame.set_index("series_uid")
    assert frame.at[series_a, "image"] == "mixed/z.dcm"  # InstanceNumber 1, not the first name
    assert frame.at[series_a, "n_slices"] == 2 and frame.at[series_b, "n_slices"] == 1


def test_unreadable_header_kept_with_warning(dicom_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (dicom_tree / "P2" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 7)
    real_read = pydicom.dcmread

    def dcmread(path: Path, **kwargs: object) -> pydicom.Dataset:  # pydicom parses most garbage leniently
        if Path(path).name == "broken.dcm":
            raise InvalidDicomError("broken")
        return real_read(path, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", dcmread)
    with pytest.warns(UserWarning, match=r"1 DICOM file\(s\) have unreadable headers.*broken\.dcm"):
        frame = dicom_dir.load(dicom_tree).frame.set_index("image")
    assert len(frame) == 6 and pd.isna(frame.at["P2/broken.dcm", "patient_id"])


def test_bad_inputs(tmp_path: Path, dicom_tree: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.dcm").write_bytes(b"not dicom")
    assert not dicom_dir.detect(empty)
    with pytest.raises(DatasetFormatError, match="no DICOM files"):
        load_dataset(empty, format="dicom_dir")
    with pytest.raises(ConfigError, match="per_series must be True or False"):
        load_dataset(dicom_tree, per_series="yes")


@pytest.mark.parametrize(
    ("value", "years"),
    [
        ("045Y", 45.0),
        ("006M", 0.5),
        ("014W", round(14 * 7 / 365.25, 4)),
        ("003D", round(3 / 365.25, 4)),
        ("45", None),
        ("", None),
        (None, None),
        ("0A5Y", None),
    ],
)
def test_parse_age(value: str | None, years: float | None) -> None:
    assert parse_age(value) == years
