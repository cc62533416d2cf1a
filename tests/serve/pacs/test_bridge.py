"""The DICOMweb bridge against a real Orthanc: studies in, SR / SEG / overlays out, each study once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.data.manifest import Manifest
from osteon.data.phantom_dicom import write_phantom_dicoms
from osteon.engine import Predictor
from osteon.serve.pacs.bridge import PacsBridge
from osteon.serve.pacs.state import StudyState

SR_MODALITY, SC_CLASS = "SR", "1.2.840.10008.5.1.4.1.1.7"


@pytest.fixture(scope="module")
def archive(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six phantom DICOM files: three patients, one study each, one series per knee."""
    return write_phantom_dicoms(Manifest.load(phantom_dataset), tmp_path_factory.mktemp("archive"), limit=6)


@pytest.fixture
def pacs(orthanc: Any) -> Any:
    orthanc.clear()
    return orthanc


def _bridge(run: Path, url: str, state: Path, **kwargs: Any) -> PacsBridge:
    return PacsBridge(Predictor.from_run(run), url, StudyState(state, url), **kwargs)


def _objects(bridge: PacsBridge, study: str) -> list[pydicom.Dataset]:
    return bridge.client.retrieve_study(study, media_types=(("application/dicom", "*"),))


def _referenced(ds: pydicom.Dataset) -> set[str]:
    return {str(e.value) for e in ds.iterall() if e.keyword == "ReferencedSOPInstanceUID"}


def test_classifier_reports_each_study_once(pacs: Any, archive: list[Path], trained_classifier: Path, tmp_path: Path):
    sources = {}
    for path in archive[:4]:
        pacs.upload(path)
        ds = pydicom.dcmread(path)
        sources.setdefault(ds.StudyInstanceUID, []).append(ds)
    bridge = _bridge(trained_classifier, pacs.dicomweb, tmp_path / "state.sqlite")
    results = bridge.run_once()
    assert sorted(r.study_uid for r in results) == sorted(sources) and {r.status for r in results} == {"done"}
    predictor = bridge.predictor
    for study, originals in sources.items():
        stored = [
            ds for ds in _objects(bridge, study) if ds.SOPInstanceUID not in {o.SOPInstanceUID for o in originals}
        ]
        reports = [ds for ds in stored if ds.Modality == SR_MODALITY]
        overlays = [ds for ds in stored if ds.SOPClassUID == SC_CLASS]
        assert len(reports) == 1 and len(overlays) == len(originals) and len(stored) == 1 + len(originals)
        source_series = {o.SeriesInstanceUID for o in originals}
        source_sops = {o.SOPInstanceUID for o in originals}
        for new in stored:  # linked to the source study and patient, with new series and instance UIDs
            assert new.StudyInstanceUID == study and new.PatientID == originals[0].PatientID
            assert new.SeriesInstanceUID not in source_series and new.SOPInstanceUID not in source_sops
        report = reports[0]
        evidence = report.CurrentRequestedProcedureEvidenceSequence[0]
        assert evidence.StudyInstanceUID == study
        assert {s.SeriesInstanceUID for s in evidence.ReferencedSeriesSequence} == source_series
        assert _referenced(report) >= source_sops  # the measurement groups point at each source image
        # the finding in the SR is the model's prediction of that image
        meanings = {str(e.value) for e in report.iterall() if e.keyword == "CodeMeaning"}
        files = [p for p in archive if pydicom.dcmread(p).StudyInstanceUID == study]
        for original, path in zip(originals, files, strict=True):
            assert predictor.predict_image(path).label in meanings, original.SOPInstanceUID
        for overlay in overlays:
            assert overlay.SourceImageSequence[0].ReferencedSOPInstanceUID in source_sops
            assert overlay.pixel_array.shape == (originals[0].Rows, originals[0].Columns, 3)
    count = len(pacs.get("/instances"))
    again = bridge.run_once()
    assert {r.status for r in again} == {"skipped"} and len(pacs.get("/instances")) == count
    # a lost state file does not make the bridge report twice: the studies already hold an Osteon SR
    fresh = _bridge(trained_classifier, pacs.dicomweb, tmp_path / "lost.sqlite")
    assert {r.status for r in fresh.run_once()} == {"done"} and len(pacs.get("/instances")) == count


class _Flaky:
    """A predictor that fails its first ``failures`` images, then delegates."""

    def __init__(self, inner: Predictor, failures: int) -> None:
        self.inner, self.failures, self.task = inner, failures, inner.task

    def predict_image(self, path: Path) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("model server out of memory")
        return self.inner.predict_image(path)


def test_failing_study_is_logged_and_retried(
    pacs: Any, archive: list[Path], trained_classifier: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    pacs.upload(archive[0])
    study = pydicom.dcmread(archive[0]).StudyInstanceUID
    state = StudyState(tmp_path / "state.sqlite", pacs.dicomweb)
    bridge = PacsBridge(_Flaky(Predictor.from_run(trained_classifier), failures=1), pacs.dicomweb, state)
    with caplog.at_level("WARNING", logger="osteon.pacs"):
        (first,) = bridge.run_once()
    assert first.status == "failed" and "out of memory" in first.error and study in caplog.text
    record = state.get(study)
    assert record is not None and record.status == "failed" and record.attempts == 1
    assert len(pacs.get("/instances")) == 1  # nothing half-stored
    (second,) = bridge.run_once()
    assert second.status == "done" and state.get(study).status == "done"
    # after max_attempts failures a study is set aside (kept in the state file, not retried)
    pacs.upload(archive[2])
    other = pydicom.dcmread(archive[2]).StudyInstanceUID
    stubborn = PacsBridge(_Flaky(bridge.predictor.inner, failures=9), pacs.dicomweb, state, max_attempts=2)
    assert [r.status for r in stubborn.run_once() if r.study_uid == other] == ["failed"]
    assert [r.status for r in stubborn.run_once() if r.study_uid == other] == ["gave_up"]
    assert [r.status for r in stubborn.run_once() if r.study_uid == other] == ["skipped"]


def test_segmentation_run_stores_a_seg_on_the_source(
    pacs: Any, archive: list[Path], phantom_dataset: Path, tmp_path: Path
):
    from osteon.engine import train

    run = tmp_path / "seg"
    train(
        task="segment",
        data=str(phantom_dataset),
        model="tiny_unet",
        epochs=1,
        image_size=64,
        batch_size=16,
        lr=1e-2,
        out=str(run),
        progress=False,
    )
    pacs.upload(archive[0])
    source = pydicom.dcmread(archive[0])
    bridge = _bridge(run, pacs.dicomweb, tmp_path / "state.sqlite")
    (result,) = bridge.run_once(study=source.StudyInstanceUID)
    assert result.status == "done" and len(result.stored["seg"]) == 1
    stored = {ds.SOPInstanceUID: ds for ds in _objects(bridge, source.StudyInstanceUID)}
    seg = stored[result.stored["seg"][0]]
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == source.StudyInstanceUID
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
    assert referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert (seg.Rows, seg.Columns) == (source.Rows, source.Columns) and len(seg.SegmentSequence) == 1
    assert source.SOPInstanceUID in _referenced(stored[result.stored["sr"][0]])


def test_cli_study_since_and_bad_date(pacs: Any, archive: list[Path], trained_classifier: Path, tmp_path: Path):
    runner = CliRunner()
    for path in archive[:4]:
        pacs.upload(path)
    study = pydicom.dcmread(archive[0]).StudyInstanceUID
    base = ["pacs", "run", str(trained_classifier), "--url", pacs.dicomweb, "--state", str(tmp_path / "s.sqlite")]
    result = runner.invoke(app, [*base, "--since", "2031-01-01"])  # the phantom studies are from 2024
    assert result.exit_code == 0, result.output
    assert "0 studies" in result.stderr
    result = runner.invoke(app, [*base, "--study", study])
    assert result.exit_code == 0, result.output
    assert "1 studies: 1 processed" in result.stderr
    result = runner.invoke(app, [*base, "--since", "2024-01-01"])
    assert result.exit_code == 0, result.output
    assert "2 studies: 1 processed, 1 already done" in result.stderr
    result = runner.invoke(app, [*base, "--since", "31/01/2024"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.stderr


@pytest.mark.shared_data
def test_real_jpeg2000_pelvis_dicoms_round_trip(pacs: Any, shared_data: Path, trained_classifier: Path, tmp_path: Path):
    files = sorted((shared_data / "ddh_pelvis_xray_dicom" / "dicoms").rglob("*.dcm"))[:2]
    if not files:
        pytest.skip("no DICOM files in ../shared/data/ddh_pelvis_xray_dicom")
    originals = [pydicom.dcmread(f) for f in files]
    for path in files:
        pacs.upload(path)
    bridge = _bridge(trained_classifier, pacs.dicomweb, tmp_path / "state.sqlite")
    results = bridge.run_once()
    assert {r.status for r in results} == {"done"}, [r.error for r in results]
    for original in originals:
        stored = [ds for ds in _objects(bridge, original.StudyInstanceUID) if ds.Modality == SR_MODALITY]
        assert len(stored) == 1 and original.SOPInstanceUID in _referenced(stored[0])


def test_watch_picks_up_a_study_that_arrives_later(
    pacs: Any, archive: list[Path], trained_classifier: Path, tmp_path: Path
):
    pacs.upload(archive[0])
    bridge = _bridge(trained_classifier, pacs.dicomweb, tmp_path / "state.sqlite")
    passes: list[list[str]] = []

    def after_pass(results: list[Any]) -> None:
        passes.append(sorted(f"{r.status}" for r in results))
        if len(passes) == 1:
            pacs.upload(archive[2])  # a new study arrives while the bridge watches

    bridge.watch(interval=0.01, passes=2, on_pass=after_pass)
    assert passes == [["done"], ["done", "skipped"]]
