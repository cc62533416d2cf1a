"""DICOM UIDs read from headers (empty for other files), and ``osteon predict`` writing them in its CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pydicom
import pytest
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.data.manifest import Manifest
from osteon.data.phantom_dicom import write_phantom_dicoms
from osteon.io.uids import UID_COLUMNS, add_uid_columns, read_uids


@pytest.fixture(scope="module")
def phantom_dicoms(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_phantom_dicoms(Manifest.load(phantom_dataset), tmp_path_factory.mktemp("dcm"), limit=4)


def test_read_uids_from_header_and_empty_for_other_files(phantom_dicoms: list[Path], phantom_dataset: Path) -> None:
    ds = pydicom.dcmread(phantom_dicoms[0])
    assert read_uids(phantom_dicoms[0]) == {
        "study_instance_uid": ds.StudyInstanceUID,
        "series_instance_uid": ds.SeriesInstanceUID,
        "sop_instance_uid": ds.SOPInstanceUID,
    }
    png = phantom_dataset.parent / "images" / "P0001_L.png"
    assert read_uids(png) == dict.fromkeys(UID_COLUMNS, "")
    assert read_uids(png.parent / "missing.png") == dict.fromkeys(UID_COLUMNS, "")


def test_add_uid_columns_after_image_and_keeps_existing(phantom_dicoms: list[Path]) -> None:
    frame = pd.DataFrame({"image": [str(p) for p in phantom_dicoms[:2]], "score": [0.1, 0.2]})
    out = add_uid_columns(frame)
    assert list(out.columns) == ["image", *UID_COLUMNS, "score"]
    assert out["study_instance_uid"].iloc[0] == pydicom.dcmread(phantom_dicoms[0]).StudyInstanceUID
    kept = add_uid_columns(out.assign(sop_instance_uid="given"))
    assert (kept["sop_instance_uid"] == "given").all()


def test_predict_cli_writes_uids_for_dicom_and_empty_for_png(
    trained_classifier: Path, phantom_dicoms: list[Path], phantom_dataset: Path, tmp_path: Path
) -> None:
    png = phantom_dataset.parent / "images" / "P0001_L.png"
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app, ["predict", str(trained_classifier), *map(str, phantom_dicoms[:2]), str(png), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("image")
    for path in phantom_dicoms[:2]:
        ds = pydicom.dcmread(path)
        row = frame.loc[str(path.resolve())]
        assert (row["study_instance_uid"], row["series_instance_uid"], row["sop_instance_uid"]) == (
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
        )
    assert (frame.loc[str(png.resolve()), list(UID_COLUMNS)] == "").all()


@pytest.mark.shared_data
def test_real_dicoms_have_uids(shared_data: Path) -> None:
    files = sorted((shared_data / "ddh_pelvis_xray_dicom" / "dicoms").rglob("*.dcm"))[:3]
    if not files:
        pytest.skip("no DICOM files in ../shared/data/ddh_pelvis_xray_dicom")
    for path in files:
        uids = read_uids(path)
        assert uids["sop_instance_uid"] == pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID != ""
