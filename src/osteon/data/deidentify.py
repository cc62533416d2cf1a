"""De-identify DICOM files with the Basic Application Level Confidentiality Profile (DICOM PS3.15 Annex E).

The attribute table and its actions (D, Z, X, U and the combined ones; about 650 rules, the standard's 2026c
edition) come from Kitware's ``dicom-anonymizer`` (extra ``deid``); Osteon adds what a data set needs to stay
usable and what the profile asks of the object as a whole:

- one job maps each original UID to one new UID, so studies, series and references between files stay linked;
- Patient ID and Patient's Name become one pseudonym per patient (``ANON0001`` ... in the order patients are
  first met), a dummy value the profile allows, so patient-level splits still hold after sharing;
- private attributes are removed; Patient Identity Removed is set to ``YES`` and the De-identification Method
  (Code Sequence) records the profile (``113100``) and each retained option;
- an object that declares burned-in annotation is not written (its pixels may show the name), unless asked;
- files that are not DICOM are not copied: the report lists them.

The pixel data is not inspected: a file that carries text in its pixels but says ``BurnedInAnnotation NO`` (or
nothing) still needs a look, as PS3.15 E.1.1 says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from osteon.errors import ConfigError

#: The extra that installs the profile's table.
EXTRA = "deid"
#: Edition of the PS3.15 table used.
TABLE = "dicomfields_2026c"
PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
#: De-identification Method (LO: at most 64 characters).
METHOD = "DICOM PS3.15 basic profile (osteon)"
#: Retain Patient Characteristics Option (PS3.15 E.3.9): attributes kept, and its code.
RETAIN_CHARACTERISTICS_CODE = ("113108", "Retain Patient Characteristics Option")
RETAIN_CHARACTERISTICS_TAGS: list[tuple[int, int]] = [
    (0x0010, 0x1010),  # Patient's Age
    (0x0010, 0x0040),  # Patient's Sex
    (0x0010, 0x1020),  # Patient's Size
    (0x0010, 0x1030),  # Patient's Weight
    (0x0010, 0x2160),  # Ethnic Group
    (0x0010, 0x21A0),  # Smoking Status
    (0x0010, 0x21C0),  # Pregnancy Status
    (0x0010, 0x2203),  # Patient's Sex Neutered
]


def _require() -> Any:
    try:
        from dicomanonymizer import simpledicomanonymizer
    except ImportError as err:
        raise ConfigError(
            f"osteon data deidentify needs the DICOM PS3.15 profile table of dicom-anonymizer ({err}). "
            f"Fix: pip install 'osteon[{EXTRA}]'."
        ) from err
    return simpledicomanonymizer


@dataclass
class DeidReport:
    """What a de-identification job did (no identifier is recorded here)."""

    profile: str = "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile"
    table: str = TABLE
    library: str = ""
    options: list[str] = field(default_factory=list)
    written: int = 0
    patients: int = 0
    studies: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.written} DICOM files de-identified ({self.patients} patients, {self.studies} studies), "
            f"{len(self.skipped)} files not written"
        )


class Deidentifier:
    """Applies the profile to pydicom datasets; one instance per job keeps UIDs and pseudonyms consistent.

    Args:
        retain_patient_characteristics: Keep age, sex, size, weight ... (PS3.15 option ``113108``).
        pseudonym_prefix: Prefix of the patient pseudonyms.
    """

    def __init__(self, *, retain_patient_characteristics: bool = False, pseudonym_prefix: str = "ANON") -> None:
        self._lib = _require()
        self._lib.dictionary.clear()  # the library keeps its UID map in a module global: one job, one map
        self.retain_patient_characteristics = retain_patient_characteristics
        self.prefix = pseudonym_prefix
        self.pseudonyms: dict[str, str] = {}
        self.studies: set[str] = set()
        rules = self._lib.initialize_actions(TABLE)
        if retain_patient_characteristics:
            rules.update({tag: self._lib.keep for tag in RETAIN_CHARACTERISTICS_TAGS})
        self._rules: Callable[[], dict] = lambda: dict(rules)

    def pseudonym(self, patient_id: str) -> str:
        if patient_id not in self.pseudonyms:
            self.pseudonyms[patient_id] = f"{self.prefix}{len(self.pseudonyms) + 1:04d}"
        return self.pseudonyms[patient_id]

    def __call__(self, ds: Any) -> Any:
        """De-identify ``ds`` in place (and return it)."""
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        original_patient = str(ds.get("PatientID", "") or ds.get("PatientName", "") or "")
        self._lib.anonymize_dataset(ds, None, True, self._rules)
        alias = self.pseudonym(original_patient)
        ds.PatientID = alias
        ds.PatientName = alias
        ds.PatientIdentityRemoved = "YES"
        codes = [PROFILE_CODE]
        if self.retain_patient_characteristics:
            codes.append(RETAIN_CHARACTERISTICS_CODE)
        ds.DeidentificationMethod = METHOD + (" + retain patient chars" if len(codes) > 1 else "")
        items = []
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        if "SOPInstanceUID" in ds and getattr(ds, "file_meta", None) is not None:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if "StudyInstanceUID" in ds:
            self.studies.add(str(ds.StudyInstanceUID))
        return ds


def deidentify_tree(
    source: str | Path,
    out: str | Path,
    *,
    retain_patient_characteristics: bool = False,
    allow_burned_in: bool = False,
    overwrite: bool = False,
) -> DeidReport:
    """De-identify every DICOM file of ``source`` (a file or a folder, walked recursively) into ``out``.

    Files keep their relative paths, so a Manifest beside them still resolves (file names are not changed:
    rename them first if they carry identifiers). ``out/DEIDENTIFICATION.json`` records the profile, the options
    and the counts; it holds no identifier and no map back to the originals.

    Raises:
        ConfigError: ``source`` is missing, ``out`` is inside ``source`` (or the same), or a file in ``out``
            exists and ``overwrite`` is False.
    """
    import importlib.metadata

    import pydicom

    from osteon.io.formats import ImageFormat, detect_format

    source, out = Path(source).resolve(), Path(out).resolve()
    if not source.exists():
        raise ConfigError(f"{source} does not exist. Fix: pass the DICOM file or folder to de-identify.")
    if out == source or source in out.parents:
        raise ConfigError(f"OUT {out} is inside IN {source}. Fix: write the de-identified copy to another folder.")
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    base = source.parent if source.is_file() else source
    job = Deidentifier(retain_patient_characteristics=retain_patient_characteristics)
    report = DeidReport(library=f"dicom-anonymizer {importlib.metadata.version('dicom-anonymizer')}")
    if retain_patient_characteristics:
        report.options.append(RETAIN_CHARACTERISTICS_CODE[1])
    for path in files:
        relative = path.relative_to(base)
        try:
            is_dicom = detect_format(path) is ImageFormat.DICOM
        except Exception:
            is_dicom = False
        if not is_dicom:
            report.skipped.append({"file": str(relative), "reason": "not DICOM (not copied)"})
            continue
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception as err:
            report.skipped.append({"file": str(relative), "reason": f"unreadable DICOM ({type(err).__name__})"})
            continue
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES" and not allow_burned_in:
            report.skipped.append(
                {"file": str(relative), "reason": "BurnedInAnnotation YES: its pixels may show identifiers"}
            )
            continue
        target = out / relative
        if target.exists() and not overwrite:
            raise ConfigError(f"{target} exists. Fix: choose an empty OUT folder or pass --overwrite.")
        job(ds)
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=bool(getattr(ds, "file_meta", None)))
        report.written += 1
    report.patients, report.studies = len(job.pseudonyms), len(job.studies)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".DEIDENTIFICATION.json.tmp"
    record = asdict(report)  # shared with the data: file names (which may identify) only as counts by reason
    reasons = [item["reason"].split(":")[0] for item in record.pop("skipped")]
    record["not_written"] = {reason: reasons.count(reason) for reason in sorted(set(reasons))}
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, out / "DEIDENTIFICATION.json")
    return report
