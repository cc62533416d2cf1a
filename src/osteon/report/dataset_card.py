"""The dataset card: sources, counts per split and label, covariates per split, data checks, flow of images."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from osteon.data.manifest import SPLITS
from osteon.report.kinds.base import natural_key
from osteon.report.rundata import RunData
from osteon.report.tables import Table, fmt, mean_sd

#: Covariate columns described per split when the Manifest has them.
COVARIATES = ("age", "sex", "bmi", "body_part", "view", "laterality", "hardware", "site", "manufacturer", "modality")
NO_LABEL = "no value in the target column"
MAX_LEVELS = 12


@dataclass
class Flow:
    """Counts for the flow diagram: dataset → exclusions → splits → evaluated."""

    total: int
    patients: int | None
    no_label: int
    unreadable: int
    included: int
    splits: dict[str, int]
    evaluated: dict[str, int] = field(default_factory=dict)
    no_split: int = 0


def flow_counts(data: RunData) -> Flow:
    """How many images entered, were left out (and why), went to each split and were evaluated.

    ``excluded.csv`` covers training-time exclusions (no label anywhere; unreadable train/val images);
    unreadable test images are counted from the evaluation (``n_unreadable``).
    """
    frame = data.manifest_with_cases()
    target = data.task_state.get("target")
    no_label = frame[target].isna() if target in frame else pd.Series(False, index=frame.index)
    excluded = data.excluded
    unreadable_cases: set[str] = set()
    if not excluded.empty:
        reasons = excluded["reason"].fillna("")
        bad = excluded.loc[reasons != NO_LABEL, "image"].astype(str)
        by_image = dict(zip(data.manifest.frame["image"].astype(str), frame["case"], strict=True))
        unreadable_cases = {by_image.get(image, image) for image in bad}
    for key in ("test", *data.external_keys):
        predictions = data.predictions.get(key)
        if predictions is not None and key == "test" and "error" in predictions:
            unreadable_cases |= set(predictions.loc[predictions["error"] != "", "case"])
    unreadable = frame["case"].isin(unreadable_cases) & ~no_label
    kept = frame[~no_label & ~unreadable]
    split = kept["split"] if "split" in kept else pd.Series(pd.NA, index=kept.index)
    patients = int(frame["patient_id"].dropna().nunique()) if "patient_id" in frame else None
    return Flow(
        total=len(frame),
        patients=patients or None,
        no_label=int(no_label.sum()),
        unreadable=int(unreadable.sum()),
        included=len(kept),
        splits={s: int((split == s).sum()) for s in SPLITS},
        evaluated={k: int(v.get("n_images", v.get("n", 0)) or 0) for k, v in data.metrics.items()},
        no_split=int(split.isna().sum()),
    )


def source_lines(data: RunData) -> list[tuple[str, str]]:
    """Where the data came from: dataset name and folder, and the key lines of its PROVENANCE.md."""
    dataset = data.state.get("dataset", {})
    lines = [
        ("dataset", str(dataset.get("name") or data.manifest.name)),
        ("location", str(dataset.get("path") or data.config.get("data", ""))),
        ("format", str(data.config.get("format") or "detected")),
    ]
    folder = Path(str(dataset.get("path") or data.config.get("data", "")))
    for name in ("PROVENANCE.md", "README.md"):
        doc = folder / name if folder.is_dir() else None
        if doc is not None and doc.is_file():
            for key, value in _provenance(doc.read_text(errors="replace")):
                lines.append((key, value))
            lines.append(("described in", str(doc)))
            break
    return lines


def _provenance(text: str) -> list[tuple[str, str]]:
    pattern = re.compile(r"^\s*-\s*\*\*(Name|Citation[^*]*|License|Licence|Data DOI)[:]?\*\*[:]?\s*(.+)$", re.I)
    out = []
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            out.append((match.group(1).rstrip(":").lower(), re.sub(r"[*_`]", "", match.group(2)).strip()))
    return out[:6]


def split_label_table(data: RunData) -> Table:
    """Images (and patients) per split, and the target per split as the task's report adapter summarises it:
    counts per class or grade, mean ± sd of a value, images with/without boxes and boxes per class, masks
    present/empty (never one row per box or polygon JSON)."""
    frame = data.manifest.frame
    target = data.task_state.get("target")
    split = frame["split"].fillna("(none)") if "split" in frame else pd.Series("(none)", index=frame.index)
    order = [s for s in (*SPLITS, "(none)") if (split == s).any()]
    header = ["", *order, "all"]
    rows = [["images", *[fmt(int((split == s).sum())) for s in order], fmt(len(frame))]]
    if "patient_id" in frame and frame["patient_id"].notna().any():
        rows.append(
            [
                "patients",
                *[fmt(int(frame.loc[split == s, "patient_id"].nunique())) for s in order],
                fmt(int(frame["patient_id"].nunique())),
            ]
        )
    if target in frame:
        rows += data.kind.label_rows(data, frame[target], split, order)
    return Table(data.kind.label_caption(), header, rows)


def covariate_table(data: RunData) -> Table | None:
    """Distribution of age/sex/body part/... per split (n (%) or mean ± sd, with missing counts)."""
    frame = data.manifest.frame
    columns = [c for c in (*COVARIATES, *data.config.get("covariates", [])) if c in frame]
    columns = list(dict.fromkeys(columns))
    if not columns:
        return None
    split = frame["split"].fillna("(none)") if "split" in frame else pd.Series("(none)", index=frame.index)
    order = [s for s in (*SPLITS, "(none)") if (split == s).any()]
    rows: list[list[str]] = []
    for column in columns:
        values = frame[column]
        numbers = pd.to_numeric(values, errors="coerce")
        numeric = values.notna().sum() > 0 and numbers.notna().sum() == values.notna().sum() and values.nunique() > 5
        if numeric:
            rows.append([f"{column}: mean ± sd", *[mean_sd(numbers[split == s]) for s in order], mean_sd(numbers)])
        else:
            text = values.astype("string").fillna("(missing)")
            levels = text.value_counts().index.tolist()
            for level in sorted(levels[:MAX_LEVELS], key=natural_key):
                rows.append(
                    [
                        f"{column} = {level}",
                        *[_count_pct(text[split == s] == level) for s in order],
                        _count_pct(text == level),
                    ]
                )
            if len(levels) > MAX_LEVELS:
                rows.append([f"{column}: {len(levels) - MAX_LEVELS} more levels", *[""] * (len(order) + 1)])
        missing = int(values.isna().sum())
        if missing and numeric:
            rows.append(
                [f"{column}: missing", *[fmt(int(values[split == s].isna().sum())) for s in order], fmt(missing)]
            )
    return Table("Covariates per split", ["", *order, "all"], rows, note="n (% of the split) or mean ± sd.")


def findings_table(data: RunData) -> tuple[Table, str]:
    """``osteon data check`` without decoding (files, duplicates, leakage, labels, boxes) on the run's Manifest."""
    from osteon.data.checks import check_dataset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            findings = check_dataset(data.manifest, decode=False, progress=False)
    except Exception as exc:  # the report must still render when the data has moved
        return Table("Data checks", ["severity", "code", "files", "message", "fix"], []), f"could not run: {exc}"
    grouped: dict[str, list[Any]] = {}
    for finding in findings:
        grouped.setdefault(finding.code, []).append(finding)
    rows, flags = [], []
    for code, items in grouped.items():
        first = items[0]
        files = sorted({f for item in items for f in item.files})
        message = first.message if len(items) == 1 else f"{first.message} (+{len(items) - 1} more like it)"
        rows.append([first.severity, code, str(len(files)), message, first.fix])
        flags.append("warn" if first.severity in ("error", "warning") else "")
    note = "Run at report time: osteon.data.checks.check_dataset(manifest, decode=False)."
    summary = f"{len(findings)} finding(s)" if findings else "no findings"
    table = Table("Data checks", ["severity", "code", "files", "message", "fix"], rows, note=note, flags=flags)
    return table, summary


def _count_pct(mask: pd.Series) -> str:
    n = int(mask.sum())
    return f"{n} ({100 * n / len(mask):.0f}%)" if len(mask) else "—"
