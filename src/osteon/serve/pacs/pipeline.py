"""A pipeline (``osteon.pipelines``) through the PACS bridge: ``osteon pacs run PIPELINE.yaml --url ...``.

Each study's image instances form one Manifest (one study) that the pipeline runs on; what goes back is

- **SR** — one TID 1500 Measurement Report: one measurement group per pipeline finding (its name coded in
  ``99OSTEON``, a qualitative evaluation ``positive`` / ``negative`` / the finding's status or its grade, the
  probability, threshold and value as measurements, the algorithm named ``Osteon <pipeline> <run>`` with the run's
  model version), referencing every source image of the study; plus one planar ROI group per box of a finding
  and per region a region stage judged (with that region's probability), in that image's pixels, referencing it;
- **SC** — one secondary-capture overlay per image: the findings' boxes and regions drawn, the findings as caption.

The SR and SC helpers of :mod:`osteon.serve.pacs.dicom_out` are reused (codes, units, series, manufacturer).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from osteon.serve.pacs.bridge import PacsBridge, StudyResult
from osteon.serve.pacs.state import DONE
from osteon.tasks.predictions import BoxPrediction


@dataclass(frozen=True)
class _Captioned(BoxPrediction):
    """Boxes of every finding of one image, captioned with the findings (for the overlay)."""

    caption: str = ""

    def summary(self) -> str:
        return self.caption


def finding_text(finding: dict[str, Any]) -> str:
    """``fracture 0.83 positive`` (or the grade / value / status)."""
    p = finding.get("probability")
    shown = f"{p:.2f}" if isinstance(p, float) else (finding.get("grade") or finding.get("value") or "")
    verdict = _verdict(finding)
    return f"{finding['name']} {shown} {verdict}".replace("  ", " ").strip()


def _verdict(finding: dict[str, Any]) -> str:
    if finding.get("grade") is not None:
        return f"grade {finding['grade']}"
    if finding.get("positive") is True:
        return "positive"
    if finding.get("positive") is False:
        return "negative"
    return str(finding.get("status") or "unknown")


def pipeline_report(sources: Sequence[Any], document: dict[str, Any]) -> Any:
    """A TID 1500 SR of one study's pipeline result (``document``: schema ``osteon.pipeline.result/1``, the
    study's images in the order of ``sources``)."""
    from pydicom.uid import generate_uid

    from osteon.serve.pacs import dicom_out

    hd = dicom_out._hd()
    name = str(document["pipeline"]["name"])
    runs = document["runs"]

    def algorithm(run: str) -> Any:
        return hd.sr.AlgorithmIdentification(name=f"Osteon {name} {run}"[:64], version=str(runs[run]["version"]))

    every_source = [hd.sr.SourceImageForMeasurementGroup.from_source_image(ds) for ds in sources]
    groups: list[Any] = []
    for study in document["studies"]:
        for finding in study["findings"]:
            measurements = [
                hd.sr.Measurement(
                    name=dicom_out._code(f"{key}-{finding['name']}", f"{label} of {finding['name']}"),
                    value=float(finding[key]),
                    unit=dicom_out._unit("1", "no units"),
                )
                for key, label in (("probability", "Probability"), ("threshold", "Threshold"), ("value", "Value"))
                if finding.get(key) is not None
            ]
            verdict = _verdict(finding)
            groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=finding["name"]),
                    algorithm_id=algorithm(finding["run"]),
                    finding_type=dicom_out._code(finding["name"], f"Osteon finding {finding['name']}"),
                    qualitative_evaluations=[
                        hd.sr.QualitativeEvaluation(name=dicom_out._finding_name(), value=dicom_out._code(verdict))
                    ],
                    measurements=measurements or None,
                    source_images=every_source,
                )
            )
    for index, (ds, image) in enumerate(zip(sources, document["images"], strict=True)):
        for finding in image["findings"]:
            boxes = [("box", b, b.get("score"), "Detection score") for b in finding.get("boxes") or []]
            boxes += [("region", r, r.get("probability"), "Region probability") for r in finding.get("regions") or []]
            for k, (what, box, score, meaning) in enumerate(boxes):
                groups.append(
                    dicom_out.box_region_group(
                        ds,
                        box["xyxy"],
                        identifier=f"image {index + 1} {finding['name']} {what} {k + 1}",
                        finding=dicom_out._code(finding["name"], f"Osteon finding {finding['name']}"),
                        algorithm=algorithm(finding["run"]),
                        score=score,
                        score_code=dicom_out._code(what, meaning),
                    )
                )
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=f"Osteon {name}"[:64]
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=hd.sr.CodedConcept("363680008", "SCT", "Radiographic imaging procedure"),
        imaging_measurements=groups,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=list(sources),
        content=report,
        series_instance_uid=generate_uid(),
        series_number=dicom_out.ResultSeries.sr,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=dicom_out.MANUFACTURER,
        is_complete=True,
        series_description=f"Osteon {name} findings (not verified)"[:64],
    )


def overlay_prediction(image: dict[str, Any]) -> _Captioned:
    """Every finding's boxes and judged regions of one result image, drawable, captioned with the findings."""
    boxes, scores, labels = [], [], []
    for finding in image["findings"]:
        for box in finding.get("boxes") or []:
            boxes.append([float(v) for v in box["xyxy"]])
            scores.append(float(box.get("score") if box.get("score") is not None else 1.0))
            labels.append(f"{finding['name']}:{box.get('label', '')}")
        for region in finding.get("regions") or []:
            boxes.append([float(v) for v in region["xyxy"]])
            scores.append(float(region.get("probability") if region.get("probability") is not None else 0.0))
            labels.append(str(finding["name"]))
    caption = "; ".join(finding_text(f) for f in image["findings"])
    names = tuple(sorted(set(labels)))
    return _Captioned(np.array(boxes, dtype=float).reshape(-1, 4), np.array(scores), tuple(labels), names, caption)


class PipelineBridge(PacsBridge):
    """:class:`PacsBridge` with a pipeline in place of one Predictor: one SR per study, a finding per finding.

    Args:
        service: A :class:`osteon.serve.pipeline_service.PipelineService`.
        url, state, client, max_attempts: As for :class:`PacsBridge`.
    """

    def __init__(self, service: Any, url: str, state: Any, *, client: Any = None, max_attempts: int = 5) -> None:
        super().__init__(service, url, state, client=client, max_attempts=max_attempts)
        self.service = service
        self.task = str(service.pipeline.spec.name)

    def _process(self, study_uid: str) -> StudyResult:
        from osteon.io.normalize import to_grayscale_float
        from osteon.io.reader import read_image
        from osteon.serve.pacs import dicom_out
        from osteon.serve.pacs.overlay import draw_prediction

        images = self._retrieve(study_uid)
        if images is None:
            return StudyResult(study_uid, DONE, stored={"existing": []})
        sources = [dicom_out.complete_type2(ds) for ds in images]
        with tempfile.TemporaryDirectory(prefix="osteon-pacs-") as tmp:
            paths = []
            for k, ds in enumerate(images):
                paths.append(Path(tmp) / f"{k:05d}.dcm")
                ds.save_as(paths[-1], enforce_file_format=True)
            document = self.service.run_images(paths, study_id=study_uid)
            failed = [im["error"] for im in document["images"] if im["status"] == "error"]
            if failed:
                raise RuntimeError(f"{len(failed)} image(s) of the study could not be predicted: {failed[0]}")
            outputs = []
            for ds, path, image in zip(images, paths, document["images"], strict=True):
                gray = to_grayscale_float(read_image(path))
                while gray.ndim > 2:  # a multi-frame image: the overlay shows the first frame
                    gray = gray[0]
                drawn = overlay_prediction(image)
                outputs.append(dicom_out.secondary_capture(ds, draw_prediction(gray, drawn), caption=drawn.caption))
        report = pipeline_report(sources, document)
        self._store([report, *outputs])
        stored = {
            "sr": [str(report.SOPInstanceUID)],
            "sc": [str(s.SOPInstanceUID) for s in outputs],
            "source": [str(ds.SOPInstanceUID) for ds in sources],
        }
        return StudyResult(study_uid, DONE, images=len(sources), stored=stored)
