"""``osteon data deidentify``: the DICOM PS3.15 basic profile on synthetic and real DICOM files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.data.manifest import Manifest
from osteon.data.phantom_dicom import write_phantom_dicoms
from osteon.io.reader import read_image

pytest.importorskip("dicomanonymizer", reason="extra `deid` (dicom-anonymizer) is not installed")

from osteon.data.deidentify import deidentify_tree

IDENTIFYING = [
    "OtherPatientIDs",
    "AccessionNumber",
    "ReferringPhysicianName",
    "InstitutionAddress",
    "StudyDescription",
]


@pytest.fixture(scope="module")
def archive(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    write_phantom_dicoms(Manifest.load(phantom_dataset), folder / "dicom", limit=6)
    (folder / "dicom" / "notes.txt").write_text("Phantom^P0001 was seen on Monday\n")
    return folder / "dicom"


def _texts(ds: pydicom.Dataset) -> str:
    return " ".join(str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW", "SQ"))


def test_basic_profile_removes_identifiers_and_keeps_links(archive: Path, tmp_path: Path) -> None:
    report = deidentify_tree(archive, tmp_path / "anon")
    assert report.written == 6 and report.patients == 3 and report.studies == 3
    assert [s["file"] for s in report.skipped] == ["notes.txt"]
    assert not (tmp_path / "anon" / "notes.txt").exists()
    originals = sorted(archive.rglob("*.dcm"))
    new_study: dict[str, str] = {}
    for source in originals:
        before = pydicom.dcmread(source)
        after = pydicom.dcmread(tmp_path / "anon" / source.relative_to(archive))
        text = _texts(after)
        assert before.PatientID not in text and "Phantom" not in text and "Hospital" not in text
        for keyword in IDENTIFYING:
            assert not after.get(keyword), keyword  # removed or emptied
        assert after.PatientID == after.PatientName == f"ANON{int(before.PatientID[1:]):04d}"
        assert after.PatientIdentityRemoved == "YES"
        assert after.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert not any(e.tag.is_private for e in after.iterall())
        assert after.StudyDate == after.PatientBirthDate == "00010101" and after.PatientSex == ""  # dummy, empty
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert after.get(keyword) and after.get(keyword) != before.get(keyword)
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        # the same original study maps to the same new study (both knees of a patient stay one study)
        assert new_study.setdefault(before.StudyInstanceUID, after.StudyInstanceUID) == after.StudyInstanceUID
        copy = tmp_path / "anon" / source.relative_to(archive)
        np.testing.assert_array_equal(read_image(source).array, read_image(copy).array)  # pixels untouched
    record = json.loads((tmp_path / "anon" / "DEIDENTIFICATION.json").read_text())
    assert record["written"] == 6 and record["not_written"] == {"not DICOM (not copied)": 1}
    assert "notes" not in json.dumps(record)  # file names are not shared


def test_retain_patient_characteristics_option(archive: Path, tmp_path: Path) -> None:
    deidentify_tree(archive, tmp_path / "anon", retain_patient_characteristics=True)
    source = sorted(archive.rglob("*.dcm"))[0]
    after = pydicom.dcmread(tmp_path / "anon" / source.relative_to(archive))
    assert after.PatientSex == pydicom.dcmread(source).PatientSex != ""
    assert [c.CodeValue for c in after.DeidentificationMethodCodeSequence] == ["113100", "113108"]


def test_burned_in_annotation_is_not_written(archive: Path, tmp_path: Path) -> None:
    source = sorted(archive.rglob("*.dcm"))[0]
    ds = pydicom.dcmread(source)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(tmp_path / "burned.dcm")
    report = deidentify_tree(tmp_path / "burned.dcm", tmp_path / "anon")
    assert report.written == 0 and "BurnedInAnnotation" in report.skipped[0]["reason"]
    assert deidentify_tree(tmp_path / "burned.dcm", tmp_path / "anon2", allow_burned_in=True).written == 1


def test_cli_refuses_output_inside_input_and_existing_files(archive: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["data", "deidentify", str(archive), str(archive / "anon")])
    assert result.exit_code == 2 and "inside IN" in result.stderr
    result = runner.invoke(app, ["data", "deidentify", str(archive), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "6 DICOM files de-identified (3 patients, 3 studies)" in result.stderr
    result = runner.invoke(app, ["data", "deidentify", str(archive), str(tmp_path / "out")])
    assert result.exit_code == 2 and "--overwrite" in result.stderr


@pytest.mark.shared_data
def test_real_jpeg2000_pelvis_dicoms(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "ddh_pelvis_xray_dicom" / "dicoms"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    report = deidentify_tree(source, tmp_path / "anon")
    files = sorted(source.rglob("*.dcm"))
    assert report.written == len(files) > 0
    for path in files[:3]:
        before, after = pydicom.dcmread(path), pydicom.dcmread(tmp_path / "anon" / path.relative_to(source))
        assert after.PatientIdentityRemoved == "YES" and after.SOPInstanceUID != before.SOPInstanceUID
        assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID  # pixels untouched
        assert after.PixelData == before.PixelData
        if before.get("PatientID"):
            assert before.PatientID not in _texts(after)
