"""The report's per-task adapters: what differs between the report of a classifier, a grader, a regressor,
a detector and a segmenter, behind one interface.

Each task registers a :class:`ReportKind` subclass in :data:`REPORT_KINDS` under its name (the way
:mod:`osteon.explain.targets` registers CAM adapters); the rest of ``osteon.report`` calls
:func:`adapter_for` and never compares a task name. A task without an adapter gets the generic
:class:`ReportKind`, whose defaults render any evaluation (metric tables, counts, no task-specific figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from osteon import metrics
from osteon.errors import ConfigError
from osteon.registry import Registry
from osteon.report.tables import Table, fmt

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from osteon.engine.rundir import RunDir
    from osteon.report.readers import ReaderCalls
    from osteon.report.rundata import RunData

#: ``(title, description, rows)`` of one gallery group; rows may carry ``_s`` (score) and ``_label`` (its name).
GalleryCases = list[tuple[str, str, pd.DataFrame]]
#: Target values listed one per row in the dataset card before they are summarised.
MAX_LISTED_VALUES = 30

REPORT_KINDS: Registry[type[ReportKind]] = Registry("report adapter")


def adapter_for(task_name: str) -> ReportKind:
    """The report adapter of a task (the generic one when the task registered none)."""
    if task_name in REPORT_KINDS:
        return REPORT_KINDS.get(task_name)()
    return ReportKind()


@dataclass(frozen=True)
class Bootstrap:
    """Bootstrap settings of one table, as cells: ``by_patient`` resamples patients when ids exist."""

    groups: np.ndarray | None
    n_resamples: int
    seed: int

    def by_patient(self, fn: Callable[..., float], *arrays: np.ndarray) -> str:
        """``estimate (low–high)`` of ``fn(*arrays)``, resampling patients when ``groups`` is set."""
        return _ci_cell(
            partial(metrics.bootstrap_ci, groups=self.groups, n_resamples=self.n_resamples, seed=self.seed), fn, *arrays
        )

    def by_image(self, fn: Callable[..., float], *arrays: np.ndarray) -> str:
        """``estimate (low–high)`` of ``fn(*arrays)``, resampling images."""
        return _ci_cell(partial(metrics.bootstrap_ci, n_resamples=self.n_resamples, seed=self.seed), fn, *arrays)


def _ci_cell(ci: Callable[..., Any], fn: Callable[..., float], *arrays: np.ndarray) -> str:
    interval = ci(fn, *arrays)
    return fmt({"estimate": interval.estimate, "low": interval.low, "high": interval.high})


@dataclass(frozen=True)
class PairedTest:
    """Paired-bootstrap settings of a comparison table; called as :func:`osteon.metrics.paired_bootstrap_test`.

    Adapters whose statistics need more than ``fn(y, a)`` (detection) read ``groups``, ``n_resamples`` and
    ``seed`` to draw the same resamples themselves.
    """

    groups: np.ndarray | None
    n_resamples: int
    seed: int

    def __call__(self, fn: Callable[..., float], y: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> Any:
        """``(difference, CI, p)`` of ``fn`` between two runs' predictions on the same resamples."""
        return metrics.paired_bootstrap_test(
            fn, y, pa, pb, groups=self.groups, n_resamples=self.n_resamples, seed=self.seed
        )


def bootstrap_row(
    name: str, fn: Callable[..., float], y: np.ndarray, pa: np.ndarray, pb: np.ndarray, boot: PairedTest
) -> list[str]:
    """One row of a comparison table: both runs' values, the difference with its CI, the test and p."""
    from osteon.report.tables import fmt_p

    diff, ci, p = boot(fn, y, pa, pb)
    interval = {"estimate": diff, "low": ci.low, "high": ci.high}
    return [name, fmt(float(fn(y, pa))), fmt(float(fn(y, pb))), fmt(interval), "paired bootstrap", fmt_p(p)]


class ReportKind:
    """Generic report behaviour; task adapters override what differs.

    Attributes:
        name: The task name the adapter is registered under (``""`` for the generic one).
        monitor_name: Display name of the validation metric that chose the best epoch (``"AUC"`` ...).
        monitor_direction: ``"max"`` when higher is better, ``"min"`` when lower is.
        categorical_truth: The reference is a category (class, grade): covariates can be tested as shortcuts.
        numeric_truth: The reference is a number (regression).
    """

    name: ClassVar[str] = ""
    monitor_name: ClassVar[str] = "score"
    monitor_direction: ClassVar[str] = "max"
    categorical_truth: ClassVar[bool] = False
    numeric_truth: ClassVar[bool] = False
    #: metrics.json keys tried in order for the headline metric of an evaluation (the first present wins).
    headline_keys: ClassVar[tuple[str, ...]] = ("auc", "macro_auc", "qwk", "mae")

    # -- helpers on the run -----------------------------------------------------------------------
    @staticmethod
    def class_names(data: RunData) -> list[str]:
        return [str(n) for n in data.task_state.get("class_names", [])]

    @staticmethod
    def positive(data: RunData) -> str | None:
        value = data.task_state.get("positive_class")
        return None if value is None else str(value)

    def is_binary(self, data: RunData) -> bool:
        """One positive class out of two: ROC, operating point, sensitivity/specificity apply."""
        return self.positive(data) is not None and len(self.class_names(data)) == 2

    # -- dataset card -----------------------------------------------------------------------------
    def label_caption(self) -> str:
        """Caption of the dataset card's table of images per split and reference."""
        return "Images per split and reference label"

    def label_rows(self, data: RunData, values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
        """Rows describing the target column ``values`` per split (``order``) and overall.

        The default counts each value, and summarises instead when there are more than
        :data:`MAX_LISTED_VALUES` (free text or JSON is not a label to list).
        """
        target = data.task_state.get("target")
        labels = values.astype("string").fillna("(missing)")
        levels = sorted(labels.unique(), key=natural_key)
        if len(levels) > MAX_LISTED_VALUES:
            given = labels != "(missing)"
            return [
                [
                    f"{target}: distinct values",
                    *[fmt(int(labels[split == s].nunique())) for s in order],
                    fmt(len(levels)),
                ],
                [
                    f"{target}: with a value",
                    *[fmt(int((given & (split == s)).sum())) for s in order],
                    fmt(int(given.sum())),
                ],
            ]
        return [
            [
                f"{target} = {level}",
                *[fmt(int(((labels == level) & (split == s)).sum())) for s in order],
                fmt(int((labels == level).sum())),
            ]
            for level in levels
        ]

    # -- subgroups --------------------------------------------------------------------------------
    def subgroup_header(self, data: RunData) -> list[str]:
        """Columns after ``covariate, level`` in the subgroup table."""
        return ["n"]

    def subgroup_cells(self, data: RunData, key: str, part: pd.DataFrame, boot: Bootstrap) -> list[str]:
        """The cells of one covariate level (``part``: its usable prediction rows)."""
        return [fmt(len(part))]

    # -- gallery ----------------------------------------------------------------------------------
    def gallery_cases(
        self, data: RunData, key: str, frame: pd.DataFrame, per_group: int
    ) -> tuple[GalleryCases, str | None]:
        """Groups of cases to show and the class whose map is drawn (``None``: the predicted one)."""
        return [], None

    def gallery_text(self, value: object) -> str:
        """A reference or prediction cell of the gallery."""
        text = str(value)
        return "none" if text in ("[]", "<NA>", "nan") else text

    def gallery_prediction(self, row: pd.Series) -> object:
        """The prediction shown for one gallery row."""
        return row.get("prediction", "")

    # -- comparison of two runs -------------------------------------------------------------------
    def paired_rows(
        self, a: RunData, b: RunData, key: str, left: pd.DataFrame, right: pd.DataFrame, boot: PairedTest
    ) -> list[list[str]]:
        """Rows ``[metric, a, b, difference (CI), test, p]`` of the paired comparison (none by default)."""
        return []

    # -- readers ----------------------------------------------------------------------------------
    def reader_table(
        self, data: RunData, key: str, calls: ReaderCalls, rows: pd.DataFrame
    ) -> tuple[Table, list[dict[str, Any]]]:
        """Readers against the model on the same cases: the table and the points for the ROC figure."""
        raise ConfigError(
            f"Reader comparison is not available for task {data.task!r}. Fix: omit --readers for this run."
        )

    # -- results ----------------------------------------------------------------------------------
    def evaluated_unit(self, data: RunData) -> str:
        """What one prediction of an evaluation is (``images``; study models: ``studies`` ...)."""
        return "images"

    def result_tables(self, data: RunData, key: str, result: dict[str, Any]) -> list[Table]:
        """Task tables shown first in an evaluation's results (per-target tables, the unit of analysis ...)."""
        return []

    def headline_metrics(self, result: dict[str, Any]) -> list[tuple[str, Any]]:
        """``(name, interval)`` of the headline metrics of one evaluation (CLAIM items 32 and 38)."""
        key = next((k for k in self.headline_keys if isinstance(result.get(k), dict)), None)
        return [(key, result[key])] if key else []

    def claim_metrics(self, result: dict[str, Any]) -> list[str]:
        """Names of the metrics reported with CIs in one evaluation (CLAIM item 28)."""
        return [k for k, v in result.items() if isinstance(v, dict) and {"estimate", "low", "high"} <= set(v)]

    def outputs_text(self, data: RunData) -> str:
        """The model's outputs for CLAIM item 22 (``2 outputs``; multi-task: one head per target ...)."""
        return f"{len(data.task_state.get('class_names', [])) or 1} outputs"

    def has_roc(self, result: dict[str, Any]) -> bool:
        """The results show a ROC curve with its CI band (CLAIM item 38)."""
        return "auc" in result

    # -- figures ----------------------------------------------------------------------------------
    def result_figures(self, data: RunData, key: str, rows: pd.DataFrame) -> list[tuple[str, plt.Figure, str]]:
        """Task figures of one evaluation for the HTML: ``(caption, figure, name of the same PNG in RUN/figures)``."""
        return []

    def write_figures(self, run: RunDir, key: str, frame: pd.DataFrame, result: dict[str, Any]) -> list[Path]:
        """Task figures of one evaluation into ``RUN/figures`` (``osteon evaluate``); ``frame``: its usable rows."""
        return []


def count_row(name: str, mask: pd.Series, split: pd.Series, order: list[str]) -> list[str]:
    """A dataset-card row: how many rows ``mask`` selects in each split of ``order``, then overall."""
    return [name, *[fmt(int((mask & (split == s)).sum())) for s in order], fmt(int(mask.sum()))]


def natural_key(value: str) -> tuple[int, float | str]:
    """Sort key: numbers by value first, then text."""
    try:
        return 0, float(value)
    except (TypeError, ValueError):
        return 1, str(value)


def numbers(values: pd.Series) -> np.ndarray:
    """A column as float (text that is not a number becomes nan)."""
    return pd.to_numeric(values, errors="coerce").to_numpy(float)
