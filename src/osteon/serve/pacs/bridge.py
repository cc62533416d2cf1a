"""The DICOMweb bridge: query a PACS for studies, predict, store the results back as DICOM.

One pass (:meth:`PacsBridge.run_once`): QIDO-RS search for studies (one UID, or every study since a date), skip
those the state file marks done, WADO-RS retrieve each remaining study, predict every image instance with
:class:`osteon.engine.Predictor`, build an SR (+ SEG for masks, + a secondary-capture overlay per image) with
:mod:`osteon.serve.pacs.dicom_out`, and STOW-RS them into the same study. ``--watch`` repeats passes.

A study is processed once: the state file records it as done with the UIDs stored back, and instances that
Osteon created (manufacturer ``Osteon``) are never taken as input, so even a lost state file does not make the
bridge report on its own reports — a study that already holds an Osteon SR is marked done without a new one.
A study that fails (PACS unreachable, unreadable pixels, a model error) is logged, recorded with its error and
retried on the next pass, up to ``max_attempts``.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from osteon.errors import ConfigError
from osteon.serve.pacs.state import DONE, StudyState

log = logging.getLogger("osteon.pacs")

#: The extra that installs the bridge's libraries.
EXTRA = "pacs"
#: Modalities of objects that are never model input.
NOT_IMAGES = {"SR", "SEG", "PR", "KO", "DOC", "RTSTRUCT"}


def require_pacs() -> None:
    """Import the bridge's libraries or raise an error naming the extra to install."""
    try:
        import dicomweb_client  # noqa: F401
        import highdicom  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"osteon pacs needs dicomweb-client and highdicom ({err}). Fix: pip install 'osteon[{EXTRA}]'."
        ) from err


def parse_since(value: str) -> str:
    """``2024-01-31`` or ``20240131`` → a QIDO StudyDate range from that day (``20240131-``)."""
    digits = value.replace("-", "")
    if not re.fullmatch(r"\d{8}", digits):
        raise ConfigError(f"--since {value!r} is not a date. Fix: give it as YYYY-MM-DD (e.g. 2024-01-31).")
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as err:
        raise ConfigError(f"--since {value!r} is not a valid date ({err}). Fix: use YYYY-MM-DD.") from err
    return f"{digits}-"


@dataclass
class StudyResult:
    """What one study gave."""

    study_uid: str
    status: str  # done | skipped | failed | gave_up
    images: int = 0
    stored: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""


def _uid(item: dict[str, Any], tag: str) -> str:
    return str(item.get(tag, {}).get("Value", [""])[0])


def is_osteon_output(ds: Any) -> bool:
    return str(ds.get("Manufacturer", "")) == "Osteon"


class PacsBridge:
    """Connects one Predictor to one DICOMweb service.

    Args:
        predictor: What predicts (``Predictor.from_run(RUN)``); anything with ``predict_image(path)`` and
            ``task.name``.
        url: DICOMweb root, e.g. ``http://127.0.0.1:8042/dicom-web``.
        state: Where processed studies are recorded.
        client: A ``dicomweb_client.DICOMwebClient`` (made from ``url`` when not given).
        max_attempts: Failures after which a study is no longer retried.
    """

    def __init__(
        self, predictor: Any, url: str, state: StudyState, *, client: Any = None, max_attempts: int = 5
    ) -> None:
        require_pacs()
        from dicomweb_client.api import DICOMwebClient

        self.predictor = predictor
        self.url = url.rstrip("/")
        self.state = state
        self.client = client if client is not None else DICOMwebClient(url=self.url)
        self.max_attempts = max_attempts
        self.task = str(getattr(getattr(predictor, "task", None), "name", "model"))

    # -- query ------------------------------------------------------------------------------------
    def find_studies(self, *, study: str | None = None, since: str | None = None) -> list[str]:
        """Study Instance UIDs to look at (QIDO-RS), oldest request order kept."""
        filters: dict[str, Any] = {}
        if study:
            filters["StudyInstanceUID"] = study
        if since:
            filters["StudyDate"] = parse_since(since)
        found = self.client.search_for_studies(search_filters=filters or None)
        uids = [_uid(item, "0020000D") for item in found]
        return [u for u in dict.fromkeys(uids) if u]

    # -- one study ------------------------------------------------------------------------------
    def process_study(self, study_uid: str) -> StudyResult:
        """Retrieve, predict, store back; record the outcome. Never raises for a study's own failure."""
        if self.state.is_done(study_uid):
            return StudyResult(study_uid, "skipped")
        try:
            with warnings.catch_warnings():  # highdicom quotes patient names in some warnings: logs carry no names
                warnings.filterwarnings("ignore", message=".*person name.*")
                result = self._process(study_uid)
        except Exception as err:  # a failing study is logged and retried, never lost
            message = f"{type(err).__name__}: {err}"
            record = self.state.mark_failed(study_uid, message, max_attempts=self.max_attempts)
            log.warning("study %s failed (attempt %d, %s): %s", study_uid, record.attempts, record.status, message)
            return StudyResult(study_uid, record.status, error=message)
        self.state.mark_done(study_uid, {"stored": result.stored, "images": result.images})
        log.info("study %s done: %d images, stored %s", study_uid, result.images, _counts(result.stored))
        return result

    def _retrieve(self, study_uid: str) -> list[Any] | None:
        """The study's image instances to predict; None when it already holds an Osteon report."""
        # as stored (transfer-syntax *): a PACS that cannot transcode (JPEG 2000 in Orthanc) still answers
        instances = self.client.retrieve_study(study_uid, media_types=(("application/dicom", "*"),))
        if any(is_osteon_output(ds) and str(ds.get("Modality", "")) == "SR" for ds in instances):
            log.info("study %s already holds an Osteon report: not processed again", study_uid)
            return None
        images = [
            ds
            for ds in instances
            if "PixelData" in ds and not is_osteon_output(ds) and str(ds.get("Modality", "")) not in NOT_IMAGES
        ]
        if not images:
            raise ConfigError(f"study {study_uid} holds no image instance to predict ({len(instances)} objects).")
        return images

    def _store(self, new: list[Any]) -> None:
        """STOW-RS ``new`` into the PACS; raise when it refuses any object."""
        response = self.client.store_instances(new)
        failed = response.get("FailedSOPSequence") if response is not None else None
        if failed:  # STOW-RS answers 200/202 with a list of refused objects: the study is not done
            reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
            raise RuntimeError(f"the PACS refused {len(failed)} of {len(new)} objects (failure reasons {reasons})")

    def _process(self, study_uid: str) -> StudyResult:
        from osteon.io.normalize import to_grayscale_float
        from osteon.io.reader import read_image
        from osteon.serve.pacs import dicom_out
        from osteon.serve.pacs.overlay import draw_prediction

        images = self._retrieve(study_uid)
        if images is None:
            return StudyResult(study_uid, DONE, stored={"existing": []})
        sources, predictions, outputs = [], [], []
        with tempfile.TemporaryDirectory(prefix="osteon-pacs-") as tmp:
            for k, ds in enumerate(images):
                path = Path(tmp) / f"{k:05d}.dcm"
                ds.save_as(path, enforce_file_format=True)
                prediction = self.predictor.predict_image(path)
                sources.append(dicom_out.complete_type2(ds))
                predictions.append(prediction)
                gray = to_grayscale_float(read_image(path))
                while gray.ndim > 2:  # a multi-frame image: the overlay shows the first frame
                    gray = gray[0]
                outputs.append(
                    dicom_out.secondary_capture(ds, draw_prediction(gray, prediction), caption=prediction.summary())
                )
        segs = [
            s
            for s in (dicom_out.segmentation(ds, p, task=self.task) for ds, p in zip(sources, predictions, strict=True))
            if s is not None
        ]
        report = dicom_out.structured_report(sources, predictions, task=self.task)
        new = [report, *segs, *outputs]
        self._store(new)
        stored = {
            "sr": [str(report.SOPInstanceUID)],
            "seg": [str(s.SOPInstanceUID) for s in segs],
            "sc": [str(s.SOPInstanceUID) for s in outputs],
            "source": [str(ds.SOPInstanceUID) for ds in sources],
        }
        return StudyResult(study_uid, DONE, images=len(sources), stored=stored)

    # -- passes ---------------------------------------------------------------------------------
    def run_once(self, *, study: str | None = None, since: str | None = None) -> list[StudyResult]:
        """One pass over the studies found; failed studies from earlier passes are retried."""
        return [self.process_study(uid) for uid in self.find_studies(study=study, since=since)]

    def watch(
        self,
        *,
        since: str | None = None,
        interval: float = 30.0,
        stop: threading.Event | None = None,
        passes: int | None = None,
        on_pass: Callable[[list[StudyResult]], None] | None = None,
    ) -> None:
        """Repeat :meth:`run_once` every ``interval`` seconds until ``stop`` is set (or ``passes`` are done).

        A pass that cannot reach the PACS is logged and the loop goes on.
        """
        stop = stop or threading.Event()
        done = 0
        while not stop.is_set() and (passes is None or done < passes):
            try:
                results = self.run_once(since=since)
            except Exception as err:
                log.warning("pass failed (%s: %s); retrying in %.0f s", type(err).__name__, err, interval)
                results = []
            if on_pass is not None:
                on_pass(results)
            done += 1
            if passes is None or done < passes:
                stop.wait(interval)


def _counts(stored: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(v)} {k.upper()}" for k, v in stored.items() if k != "source" and v) or "nothing"
