"""Report adapter of ``multitask``: one backbone, one head per target (``fractured``, ``kl_grade``, ``age`` ...).

``metrics.json`` holds ``per_target: {name: the head task's evaluation}`` and the predictions table holds each head's
columns prefixed ``<name>.``. Each target is reported by the adapter of its own head task (classification: AUC,
grading: quadratic kappa, regression: MAE), on a view of the run in which that head is the whole task
(:func:`head_view`): one results table per target with 95% CIs, its figures, its dataset-card rows and its
subgroup columns.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from osteon.report.kinds.base import REPORT_KINDS, Bootstrap, ReportKind, adapter_for
from osteon.report.tables import Table, fmt, is_interval
from osteon.report.tables import label as _label

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from osteon.engine.rundir import RunDir
    from osteon.report.rundata import RunData

#: Identifier columns kept in each head's view of the predictions table.
ID_COLUMNS = ("image", "patient_id", "study_id", "split", "case")
#: Metric names the generic ``label`` leaves in lower case.
NAMES = {"mae": "MAE", "rmse": "RMSE", "r": "Pearson r", "r2": "R²", "macro_auc": "macro AUC",
         "mae_grades": "mean absolute grade error"}  # fmt: skip
#: Count keys of a head's evaluation shown above its metrics.
COUNTS = (("n", "images with this target"), ("n_positive", "positives"), ("n_negative", "negatives"))


def label(key: str) -> str:
    """A metric's display name (``mae`` → ``MAE``)."""
    return NAMES.get(key, _label(key))


def heads(data: RunData) -> list[dict[str, Any]]:
    """The run's heads: ``{"name", "weight", "state"}`` from ``state.json › task.extra.heads``."""
    return list(data.task_state.get("extra", {}).get("heads", []))


def head_rows(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """One head's columns of a multi-task predictions table, unprefixed, on the rows where its truth is known."""
    prefix = f"{name}."
    own = frame[[c for c in frame.columns if c.startswith(prefix)]].rename(columns=lambda c: c[len(prefix) :])
    ids = frame[[c for c in ID_COLUMNS if c in frame]]
    rows = pd.concat([ids, own], axis=1)
    if "truth" not in rows:
        return rows.iloc[:0]
    return rows[rows["truth"].notna() & (rows["truth"].astype(str) != "")].reset_index(drop=True)


def head_view(data: RunData, head: dict[str, Any]) -> RunData:
    """The run as if this head were its whole task: its task state, its evaluations and its predictions."""
    name = head["name"]
    metrics = {}
    for key, result in data.metrics.items():
        own = result.get("per_target", {}).get(name)
        if isinstance(own, dict):
            metrics[key] = {**{k: v for k, v in result.items() if k != "per_target"}, **own}
    return dataclasses.replace(
        data,
        state={**data.state, "task": dict(head["state"])},
        metrics=metrics,
        predictions={k: head_rows(v, name) for k, v in data.predictions.items()},
    )


def _inner(head: dict[str, Any]) -> ReportKind:
    return adapter_for(str(head["state"].get("name", "")))


@REPORT_KINDS.register("multitask")
class MultiTaskKind(ReportKind):
    """Several targets per image: every table and figure per target, through the target's own adapter."""

    name: ClassVar[str] = "multitask"
    monitor_name: ClassVar[str] = "mean score"

    # -- dataset card -----------------------------------------------------------------------------
    def label_caption(self) -> str:
        return "Images per split and reference, per target"

    def label_rows(self, data: RunData, values: pd.Series, split: pd.Series, order: list[str]) -> list[list[str]]:
        frame = data.manifest.frame
        rows: list[list[str]] = []
        for head in heads(data):
            if head["name"] in frame:
                view = head_view(data, head)
                rows += _inner(head).label_rows(view, frame[head["name"]], split, order)
        return rows

    # -- results ----------------------------------------------------------------------------------
    def result_tables(self, data: RunData, key: str, result: dict[str, Any]) -> list[Table]:
        """A summary (one row per target: its head task, weight, n and headline metric), then one table per target."""
        per_target = result.get("per_target", {})
        summary, tables = [], []
        for head in heads(data):
            name, own = head["name"], per_target.get(head["name"])
            inner = _inner(head)
            if not isinstance(own, dict):
                summary.append([name, str(head["state"].get("name")), fmt(head.get("weight")), "0", "—", "—"])
                continue
            headline = inner.headline_metrics(own)
            metric, value = headline[0] if headline else ("—", None)
            summary.append(
                [name, str(own.get("kind", head["state"].get("name"))), fmt(head.get("weight")), fmt(own.get("n")),
                 label(metric), fmt(value)]
            )  # fmt: skip
            tables.append(target_table(name, own, inner, key))
        header = ["target", "head task", "loss weight", "n", "headline metric", "estimate (95% CI)"]
        note = (
            "One backbone, one head per target; each target is evaluated on the images where it is known, with "
            "its own head task's metrics. The validation score that chose the epoch is the mean of the heads' "
            "scores (AUC, quadratic kappa, −MAE)."
        )
        return [Table(f"Results per target — {key}", header, summary, note=note), *tables]

    def headline_metrics(self, result: dict[str, Any]) -> list[tuple[str, Any]]:
        """Every target's headline metric, named ``target metric``."""
        out = []
        for name, own in result.get("per_target", {}).items():
            inner = adapter_for(str(own.get("kind", "")))
            out += [(f"{name} {label(k)}", v) for k, v in inner.headline_metrics(own)]
        return out

    def claim_metrics(self, result: dict[str, Any]) -> list[str]:
        return [
            f"{name} {label(k)}"
            for name, own in result.get("per_target", {}).items()
            for k, v in own.items()
            if is_interval(v)
        ]

    def has_roc(self, result: dict[str, Any]) -> bool:
        return any("auc" in own for own in result.get("per_target", {}).values())

    def outputs_text(self, data: RunData) -> str:
        parts = [
            f"{h['name']} ({h['state'].get('name')}, {len(h['state'].get('class_names', [])) or 1} outputs)"
            for h in heads(data)
        ]
        return "one head per target: " + ", ".join(parts)

    # -- subgroups --------------------------------------------------------------------------------
    def subgroup_header(self, data: RunData) -> list[str]:
        out = ["n"]
        for head in heads(data):
            out += [f"{head['name']}: {c}" for c in _inner(head).subgroup_header(head_view(data, head))[1:]]
        return out

    def subgroup_cells(self, data: RunData, key: str, part: pd.DataFrame, boot: Bootstrap) -> list[str]:
        cells = [fmt(len(part))]
        for head in heads(data):
            view, inner = head_view(data, head), _inner(head)
            width = len(inner.subgroup_header(view)) - 1
            if key not in view.metrics:
                cells += ["—"] * width
                continue
            column = f"{head['name']}.truth"
            known = part[column].notna().to_numpy() if column in part else None
            if known is None or not known.any():
                cells += ["—"] * width
                continue
            groups = boot.groups[known] if boot.groups is not None else None
            rows = head_rows(part[known], head["name"])
            cells += inner.subgroup_cells(view, key, rows, Bootstrap(groups, boot.n_resamples, boot.seed))[1:]
        return cells

    # -- figures ----------------------------------------------------------------------------------
    def result_figures(self, data: RunData, key: str, rows: pd.DataFrame) -> list[tuple[str, plt.Figure, str]]:
        out = []
        for head in heads(data):
            view = head_view(data, head)
            own = view.predictions.get(key)
            if key in view.metrics and own is not None and len(own):
                out += head_figures(view, head, key, own)
        return out

    def write_figures(self, run: RunDir, key: str, frame: pd.DataFrame, result: dict[str, Any]) -> list[Path]:
        from osteon.errors import RunDirError
        from osteon.report.figures import save_figure
        from osteon.report.rundata import RunData

        try:
            data = RunData.load(run.path)
        except RunDirError:  # not evaluated yet: nothing to draw per target
            return []
        data.predictions[key] = frame
        data.metrics[key] = result
        written = []
        for _caption, fig, name in self.result_figures(data, key, frame):
            written.append(save_figure(fig, run.figures / name))
        return written


def target_table(name: str, result: dict[str, Any], inner: ReportKind, key: str) -> Table:
    """One target's results: counts, then the headline metric and every other metric with its 95% CI."""
    headline = [k for k, _ in inner.headline_metrics(result)]
    order = headline + [k for k, v in result.items() if is_interval(v) and k not in headline]
    rows = [[text, fmt(result[k])] for k, text in COUNTS if isinstance(result.get(k), int)]
    rows += [[label(k) + (" (headline)" if k in headline else ""), fmt(result[k])] for k in order]
    if isinstance(result.get("threshold"), int | float):
        rows.append(["threshold (chosen on validation)", fmt(float(result["threshold"]))])
    kind = result.get("kind", "?")
    return Table(f"Target {name} ({kind}) — {key}", ["metric", "estimate (95% CI)"], rows)


def head_figures(view: RunData, head: dict[str, Any], key: str, rows: pd.DataFrame) -> list[tuple[str, Any, str]]:
    """ROC (binary targets), confusion matrix (label targets) and the head adapter's figures (Bland–Altman ...)."""
    from osteon.report import figures as figs
    from osteon.report.pubfigs import confusion_names

    name, result = head["name"], view.metrics[key]
    out: list[tuple[str, Any, str]] = []
    positive = result.get("positive_class")
    if positive is not None and f"prob_{positive}" in rows:
        y, score = figs.binary_arrays(rows, str(positive))
        if 0 < y.sum() < len(y):
            point = figs._operating_point(result)
            fig = figs.roc_figure(
                y, score, title=f"ROC — {name} — {key}", groups=figs.groups_of(rows), auc=result.get("auc"),
                operating_point=point,
            )  # fmt: skip
            out.append((f"{name}: ROC curve with 95% bootstrap band", fig, f"{key}_{name}_roc.png"))
    if isinstance(result.get("confusion_matrix"), list) and result["confusion_matrix"]:
        names = confusion_names(result, view.task_state)
        fig = figs.confusion_figure(result["confusion_matrix"], names, title=f"Confusion — {name} — {key}")
        out.append((f"{name}: confusion matrix (rows: reference)", fig, f"{key}_{name}_confusion.png"))
    for caption, fig, file_name in _inner(head).result_figures(view, key, rows):
        out.append((f"{name}: {caption}", fig, file_name.replace(f"{key}_", f"{key}_{name}_", 1)))
    return out
