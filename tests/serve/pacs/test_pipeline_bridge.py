"""``osteon pacs run PIPELINE.yaml`` against a real Orthanc: one SR per study, one finding per pipeline finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.data.manifest import Manifest
from osteon.data.phantom_dicom import write_phantom_dicoms
from osteon.serve.pipeline_service import PipelineService

SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
pytestmark = pytest.mark.filterwarnings("ignore")


def _items(ds: pydicom.Dataset) -> Any:
    """Every item of every sequence, depth first."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield item
                yield from _items(item)


def _referenced(ds: pydicom.Dataset) -> set[str]:
    return {str(e.value) for e in ds.iterall() if e.keyword == "ReferencedSOPInstanceUID"}


def test_pipeline_round_trip_stores_one_sr_with_each_finding(
    orthanc: Any, phantom_dataset: Path, phantom_pipeline: Path, tmp_path: Path
) -> None:
    from dicomweb_client.api import DICOMwebClient

    orthanc.clear()
    (path,) = write_phantom_dicoms(Manifest.load(phantom_dataset), tmp_path / "archive", limit=1)
    orthanc.upload(path)
    source = pydicom.dcmread(path)
    study = source.StudyInstanceUID
    args = ["pacs", "run", str(phantom_pipeline), "--url", orthanc.dicomweb, "--study", study]
    args += ["--state", str(tmp_path / "state.sqlite")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 processed" in result.output

    objects = DICOMwebClient(url=orthanc.dicomweb).retrieve_study(study, media_types=(("application/dicom", "*"),))
    new = [ds for ds in objects if ds.SOPInstanceUID != source.SOPInstanceUID]
    reports = [ds for ds in new if ds.Modality == "SR"]
    overlays = [ds for ds in new if ds.SOPClassUID == SC_CLASS]
    assert len(reports) == 1 and len(overlays) == 1 and len(new) == 2
    report = reports[0]
    assert report.StudyInstanceUID == study and report.PatientID == source.PatientID
    assert source.SOPInstanceUID in _referenced(report)
    assert overlays[0].SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    meanings = {str(e.value) for e in report.iterall() if e.keyword == "CodeMeaning"}
    for name in ("fracture", "bone", "crop_fracture"):  # one coded finding per pipeline finding
        assert f"Osteon finding {name}" in meanings
    # the stored probability is the pipeline's own, for the same pixels
    expected = PipelineService(phantom_pipeline).run_images([path], study_id=study)["studies"][0]["findings"]
    fracture = next(f for f in expected if f["name"] == "fracture")
    values = {
        str(item.ConceptNameCodeSequence[0].CodeMeaning): float(item.MeasuredValueSequence[0].NumericValue)
        for item in _items(report)
        if "MeasuredValueSequence" in item
    }
    assert values["Probability of fracture"] == pytest.approx(fracture["probability"], abs=1e-4)
    crops = next(f for f in expected if f["name"] == "crop_fracture")
    assert values["Probability of crop_fracture"] == pytest.approx(crops["probability"], abs=1e-4)
    assert "Region probability" in values  # the crop the region stage judged, as a region on the source image
    algorithms = {str(e.value) for e in report.iterall() if e.keyword == "TextValue"}
    assert "Osteon phantom-serve cls" in algorithms and "Osteon phantom-serve seg" in algorithms

    again = CliRunner().invoke(app, args)  # a study is processed once
    assert again.exit_code == 0 and "1 already done" in again.output
