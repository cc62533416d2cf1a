"""Predictions as DICOM objects (highdicom): a Structured Report, a Segmentation and a secondary-capture overlay.

Every object joins the source study (same patient and Study Instance UID), in a new series with new UIDs, and
references the source image(s) by SOP Class and Instance UID:

- **SR** — TID 1500 Measurement Report (Comprehensive 3D SR): one measurement group per source image with the
  finding as a qualitative evaluation (label or grade, coded in the private scheme ``99OSTEON``), class
  probabilities and values as measurements, one planar ROI group per detected box (a closed polyline in the
  image's pixels); the algorithm (``Osteon <task>``, version) is named in each group.
- **SEG** — binary DICOM Segmentation of the predicted mask (one segment per foreground class), for
  segmentation models only.
- **SC** — an RGB Secondary Capture of the image with the prediction drawn on it, for viewers that show
  neither SR nor SEG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import osteon

MANUFACTURER = "Osteon"
#: Private coding scheme for Osteon's labels (PS3.16: designators starting with 99 are local).
SCHEME = "99OSTEON"


@dataclass(frozen=True)
class ResultSeries:
    """Series numbers and descriptions of what the bridge stores back."""

    sr: int = 9101
    seg: int = 9102
    sc: int = 9103


#: Type 2 attributes of the Patient and General Study modules (present, maybe empty) that the new objects copy.
TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def complete_type2(ds: Any) -> Any:
    """Add the missing type 2 Patient/Study attributes of a retrieved source as empty values (in place).

    Archives hold objects without them (e.g. no Patient's Birth Date); a type 2 attribute may be empty, and
    highdicom copies them into the objects it creates.
    """
    for keyword in TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def _hd() -> Any:
    import highdicom

    return highdicom


def _code(value: str, meaning: str | None = None) -> Any:
    hd = _hd()
    text = str(value)
    return hd.sr.CodedConcept(value=text[:64], scheme_designator=SCHEME, meaning=(meaning or text)[:64])


def _ratio(name: Any, value: float) -> Any:
    """A unitless measurement (a probability, a score, a grade)."""
    return _hd().sr.Measurement(name=name, value=float(value), unit=_unit("1", "no units"))


def _unit(value: str, meaning: str) -> Any:
    return _hd().sr.CodedConcept(value=value, scheme_designator="UCUM", meaning=meaning)


def _finding_name() -> Any:
    return _hd().sr.CodedConcept(value="121071", scheme_designator="DCM", meaning="Finding")


def _measurements(prediction: Any) -> tuple[list[Any], list[Any]]:
    """(qualitative evaluations, measurements) of one image's prediction, by its type."""
    from osteon.tasks.predictions import ClassPrediction, GradePrediction, MaskPrediction, ValuePrediction

    hd = _hd()
    evaluations: list[Any] = []
    measurements: list[Any] = []
    if isinstance(prediction, ClassPrediction | GradePrediction):
        shown = prediction.label if isinstance(prediction, ClassPrediction) else prediction.grade
        evaluations.append(hd.sr.QualitativeEvaluation(name=_finding_name(), value=_code(shown)))
        for name, p in zip(prediction.class_names, np.asarray(prediction.probabilities).ravel(), strict=True):
            measurements.append(
                hd.sr.Measurement(
                    name=_code(f"p-{name}", f"Probability of {name}"), value=float(p), unit=_unit("1", "no units")
                )
            )
        if isinstance(prediction, GradePrediction):
            measurements.append(
                hd.sr.Measurement(
                    name=_code("expected-grade", "Expected grade"),
                    value=float(prediction.expected_grade),
                    unit=_unit("1", "no units"),
                )
            )
    elif isinstance(prediction, ValuePrediction):
        measurements.append(
            hd.sr.Measurement(
                name=_code("value", "Predicted value"), value=float(prediction.value), unit=_unit("1", "no units")
            )
        )
    elif isinstance(prediction, MaskPrediction):
        evaluations.append(hd.sr.QualitativeEvaluation(name=_finding_name(), value=_code(prediction.summary())))
        for name, stats in prediction.measurements.items():
            measurements.append(
                hd.sr.Measurement(
                    name=_code(f"area-{name}", f"Area of {name}"),
                    value=float(stats.get("area_px", 0) or 0),
                    unit=_unit("{pixels}", "pixels"),
                )
            )
    return evaluations, measurements


def box_region_group(
    ds: Any,
    box: Sequence[float],
    *,
    identifier: str,
    finding: Any,
    algorithm: Any,
    score: float | None,
    score_code: Any,
) -> Any:
    """One SR planar-region group: an ``[x1, y1, x2, y2]`` box (original pixels) on its source image, with a score."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    x1, y1, x2, y2 = (float(v) for v in box)
    polyline = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]], dtype=float)
    measurements = (
        [hd.sr.Measurement(name=score_code, value=float(score), unit=_unit("1", "no units"))]
        if score is not None
        else None
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=identifier),
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=polyline,
            source_image=hd.sr.SourceImageForRegion.from_source_image(ds),
        ),
        finding_type=finding,
        algorithm_id=algorithm,
        measurements=measurements,
    )


def _boxes(prediction: Any) -> list[tuple[np.ndarray, str, float]]:
    from osteon.tasks.predictions import BoxPrediction

    if not isinstance(prediction, BoxPrediction):
        return []
    return [
        (np.asarray(box, dtype=float), str(label), float(score))
        for box, label, score in zip(prediction.boxes_xyxy, prediction.labels, prediction.scores, strict=True)
    ]


def structured_report(
    sources: Sequence[Any],
    predictions: Sequence[Any],
    *,
    task: str,
    series_number: int = ResultSeries.sr,
) -> Any:
    """A TID 1500 Measurement Report on ``sources`` (pydicom datasets), one group per image (+ one per box)."""
    from pydicom.uid import generate_uid

    hd = _hd()
    algorithm = hd.sr.AlgorithmIdentification(name=f"Osteon {task}", version=osteon.__version__)
    groups: list[Any] = []
    for index, (ds, prediction) in enumerate(zip(sources, predictions, strict=True)):
        evaluations, measurements = _measurements(prediction)
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"image {index + 1}"),
                algorithm_id=algorithm,
                finding_type=_code(task, f"Osteon {task}"),
                qualitative_evaluations=evaluations or None,
                measurements=measurements or None,
                source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)],
            )
        )
        for k, (box, label, score) in enumerate(_boxes(prediction)):
            groups.append(
                box_region_group(
                    ds,
                    box,
                    identifier=f"image {index + 1} box {k + 1}",
                    finding=_code(label),
                    algorithm=algorithm,
                    score=score,
                    score_code=_code("score", "Detection score"),
                )
            )
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=f"Osteon {osteon.__version__}"
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
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description=f"Osteon {task} findings (not verified)",
    )


def segmentation(source: Any, prediction: Any, *, task: str, series_number: int = ResultSeries.seg) -> Any | None:
    """A binary DICOM SEG of a :class:`~osteon.tasks.predictions.MaskPrediction` on ``source`` (None otherwise)."""
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from osteon.tasks.predictions import MaskPrediction

    if not isinstance(prediction, MaskPrediction):
        return None
    hd = _hd()
    channels = prediction.channels()  # (K, H, W) bool
    algorithm = hd.AlgorithmIdentificationSequence(
        name=f"Osteon {task}", version=osteon.__version__, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k + 1,
            segment_label=str(name)[:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=_code(name),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for k, name in enumerate(prediction.class_names[1:])
    ]
    pixels = np.moveaxis(channels, 0, -1)[None].astype(np.uint8)  # (1 frame, H, W, segments)
    return hd.seg.Segmentation(
        source_images=[source],
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=f"Osteon {task}",
        software_versions=osteon.__version__,
        device_serial_number="0",
        omit_empty_frames=False,
        series_description=f"Osteon {task} masks (not verified)",
    )


def secondary_capture(source: Any, rgb: np.ndarray, *, series_number: int = ResultSeries.sc, caption: str = "") -> Any:
    """An RGB Secondary Capture of ``rgb`` (``(H, W, 3)`` uint8) in the source's study, referencing the source."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    hd = _hd()
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=np.ascontiguousarray(rgb, dtype=np.uint8),
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=int(source.get("InstanceNumber", 1) or 1),
        manufacturer=MANUFACTURER,
        patient_orientation=("A", "F"),  # placeholder: replaced below by the source's own value (type 2: may be empty)
    )
    sc.PatientOrientation = source.get("PatientOrientation", "") or ""
    if source.get("Laterality"):
        sc.Laterality = source.Laterality
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    sc.SourceImageSequence = [reference]
    sc.DerivationDescription = f"Osteon prediction drawn on the source image: {caption}"[:1024]
    sc.SeriesDescription = "Osteon overlay (not for diagnosis)"
    sc.BurnedInAnnotation = "YES"
    return sc
