"""Failure analysis by subgroup, and covariates that give the label away (shortcuts).

FracAtlas is the worked example: orthopaedic hardware is in 84 fractured images but 1 non-fractured
one, so "hardware present" nearly implies "fractured", and a model can learn the implant instead of the
fracture. :func:`shortcut_warnings` finds such covariates in the whole labelled dataset;
:func:`subgroup_table` shows n, prevalence and performance (with CIs) per level on the test cases.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from osteon.report.dataset_card import COVARIATES
from osteon.report.kinds import Bootstrap
from osteon.report.rundata import RunData, usable
from osteon.report.tables import Table

#: A covariate level is flagged when at least this share of its images has one label ...
PURITY = 0.95
#: ... it has at least this many images ...
MIN_LEVEL_SIZE = 10
#: ... and its label share differs from the overall share by at least this much.
MIN_GAP = 0.2
#: Cramér's V from which a whole covariate counts as strongly associated with the label.
STRONG_ASSOCIATION = 0.5
MAX_LEVELS = 12


@dataclass(frozen=True)
class ShortcutWarning:
    """A covariate level nearly determines the label."""

    column: str
    level: str
    label: str
    n: int
    n_label: int
    share: float
    overall_share: float
    cramers_v: float

    @property
    def message(self) -> str:
        return (
            f"{self.column} = {self.level}: {self.n_label} of {self.n} images ({100 * self.share:.1f}%) have label "
            f"{self.label}, against {100 * self.overall_share:.1f}% overall (Cramér's V {self.cramers_v:.2f}). "
            "A model can learn this covariate as a shortcut instead of the finding: check its subgroup rows below, "
            "and consider stratified sampling, excluding the covariate's images, or reporting the subgroup separately."
        )


def subgroup_columns(data: RunData, extra: tuple[str, ...] = ()) -> list[str]:
    """Covariate columns the Manifest has (known covariates, the run's --covariates, ``extra``)."""
    frame = data.manifest.frame
    columns = [*COVARIATES, *data.config.get("covariates", []), *extra]
    return [c for c in dict.fromkeys(columns) if c in frame and frame[c].notna().any()]


def levels_of(values: pd.Series) -> pd.Series:
    """Categorical levels of a covariate: numbers with many values become quartile bins (``[a, b)``)."""
    numbers = pd.to_numeric(values, errors="coerce")
    if values.notna().sum() and numbers.notna().sum() == values.notna().sum() and values.nunique() > 6:
        bins = pd.qcut(numbers, q=4, duplicates="drop")
        return bins.astype("string").fillna("(missing)")
    return values.astype("string").fillna("(missing)")


def cramers_v(a: pd.Series, b: pd.Series) -> float:
    """Cramér's V of two categorical series (0: independent, 1: one determines the other)."""
    from scipy.stats.contingency import association

    table = pd.crosstab(a, b)
    if table.shape[0] < 2 or table.shape[1] < 2:
        return float("nan")
    return float(association(table.to_numpy(), method="cramer"))


def shortcut_warnings(data: RunData, columns: list[str]) -> list[ShortcutWarning]:
    """Covariate levels that nearly determine the label in the labelled Manifest (all splits).

    A level is flagged when it has ≥ :data:`MIN_LEVEL_SIZE` images, ≥ :data:`PURITY` of them share one
    label and that share is ≥ :data:`MIN_GAP` away from the label's overall share; or when the covariate's
    Cramér's V with the label is ≥ :data:`STRONG_ASSOCIATION` (then its purest level is reported).
    """
    frame = data.manifest.frame
    target = data.task_state.get("target")
    if target not in frame or not data.kind.categorical_truth:
        return []  # labels only: values, masks and boxes are not categories
    labelled = frame[frame[target].notna()]
    label = labelled[target].astype("string")
    found = []
    for column in columns:
        if column == target:
            continue
        level = levels_of(labelled[column])
        if level.nunique() < 2 or level.nunique() > MAX_LEVELS:
            continue
        v = cramers_v(level, label)
        table = pd.crosstab(level, label)
        overall = label.value_counts(normalize=True)
        candidates = []
        for lvl, counts in table.iterrows():
            n = int(counts.sum())
            top = str(counts.idxmax())
            share = float(counts.max() / n) if n else 0.0
            gap = abs(share - float(overall[top]))
            candidates.append((share, gap, n, str(lvl), top, int(counts.max())))
            if lvl != "(missing)" and n >= MIN_LEVEL_SIZE and share >= PURITY and gap >= MIN_GAP:
                found.append(
                    ShortcutWarning(column, str(lvl), top, n, int(counts.max()), share, float(overall[top]), v)
                )
        if np.isfinite(v) and v >= STRONG_ASSOCIATION and not any(w.column == column for w in found):
            share, _, n, lvl, top, k = max(candidates)
            found.append(ShortcutWarning(column, lvl, top, n, k, share, float(overall[top]), v))
    return found


def subgroup_table(
    data: RunData, key: str, columns: list[str], *, n_resamples: int = 500, seed: int = 0
) -> Table | None:
    """Performance per covariate level on the evaluated cases of ``key`` (n, prevalence, metrics with CIs).

    The columns come from the task's report adapter: binary classification n, positives, prevalence, AUC,
    sensitivity and specificity at the run's operating point; multiclass/grading n, accuracy (and quadratic
    kappa for grades); regression n, MAE; segmentation mean Dice; detection the image-level AUC of the top box.
    """
    predictions = data.predictions.get(key)
    if predictions is None or not columns:
        return None
    frame = usable(predictions)
    manifest = data.manifest_with_cases().drop_duplicates("case")
    # levels (e.g. age quartiles) come from the whole dataset, so subgroups mean the same in every split
    levels = pd.DataFrame({c: levels_of(manifest[c]) for c in columns}, index=manifest.index).set_index(
        manifest["case"]
    )
    frame = frame.drop(columns=[c for c in columns if c in frame]).join(levels, on="case")
    kind = data.kind
    rows, flags = [], []
    for column in columns:
        levels = frame[column].astype("string").fillna("(missing)")
        if levels.nunique() > MAX_LEVELS:
            continue
        for level in sorted(levels.unique(), key=str):
            part = frame[levels == level]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cells = kind.subgroup_cells(data, key, part, _bootstrap(part, n_resamples, seed))
            rows.append([column, str(level), *cells])
            flags.append("warn" if len(part) < 10 else "")
    header = ["covariate", "level", *kind.subgroup_header(data)]
    note = (
        f"Cases of the {key!r} evaluation; intervals: percentile bootstrap ({n_resamples} resamples, by patient when "
        "ids exist). Rows with fewer than 10 images are highlighted: their estimates are unstable. '—': undefined "
        "(e.g. AUC when a subgroup has one class)."
    )
    return Table(f"Subgroups — {key}", header, rows, note=note, flags=flags)


def _bootstrap(part: pd.DataFrame, n_resamples: int, seed: int) -> Bootstrap:
    """Bootstrap settings of one subgroup: by patient when every row has an id."""
    ids = "patient_id" in part and bool(part["patient_id"].notna().all())
    return Bootstrap(part["patient_id"].astype(str).to_numpy() if ids else None, n_resamples, seed)
