"""Figures of an evaluation: ROC with a bootstrap CI band (and readers), confusion matrix, calibration,
Bland–Altman, learning curves. Builders return matplotlib figures; :func:`write_figures` saves PNGs into
``RUN/figures`` and :func:`data_uri` embeds a figure in the HTML report.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from osteon.engine.rundir import RunDir


def roc_band(
    y_true: np.ndarray, y_score: np.ndarray, *, groups: np.ndarray | None = None, n_resamples: int = 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean ROC and a pointwise 95% band of sensitivity over a fixed FPR grid, resampling patients.

    Returns:
        ``(fpr_grid, tpr, low, high)``, each of shape ``(101,)``.
    """
    grid = np.linspace(0, 1, 101)
    rng = np.random.default_rng(seed)
    units = np.unique(groups) if groups is not None else np.arange(len(y_true))
    members = {u: np.flatnonzero(groups == u) for u in units} if groups is not None else None
    curves = []
    for _ in range(n_resamples):
        drawn = rng.choice(units, size=len(units), replace=True)
        idx = np.concatenate([members[u] for u in drawn]) if members is not None else drawn
        if len(np.unique(y_true[idx])) < 2:
            continue
        fpr, tpr, _ = roc_curve(y_true[idx], y_score[idx])
        curves.append(np.interp(grid, fpr, tpr))
    fpr, tpr, _ = roc_curve(y_true, y_score)
    point = np.interp(grid, fpr, tpr)
    if not curves:
        return grid, point, point, point
    stack = np.array(curves)
    return grid, point, np.percentile(stack, 2.5, axis=0), np.percentile(stack, 97.5, axis=0)


# -- builders (arrays → figure) --------------------------------------------------------------------
def roc_figure(
    y_true: np.ndarray,
    y_score: np.ndarray,
    *,
    title: str,
    groups: np.ndarray | None = None,
    auc: dict[str, Any] | None = None,
    operating_point: tuple[float, float] | None = None,
    readers: Sequence[dict[str, Any]] = (),
) -> plt.Figure:
    """ROC curve with its 95% bootstrap band, the model's operating point and readers' points.

    Args:
        y_true: ``(N,)`` 0/1 reference.
        y_score: ``(N,)`` score of the positive class.
        title: Figure title.
        groups: ``(N,)`` patient ids (the band resamples patients).
        auc: ``{estimate, low, high}`` for the legend.
        operating_point: ``(sensitivity, specificity)`` of the model at its chosen threshold.
        readers: Dicts ``{reader, sensitivity, specificity}`` (optionally ``sensitivity_ci``/``specificity_ci``
            ``(low, high)`` for error bars), plotted at ``(1 - specificity, sensitivity)``.
    """
    grid, tpr, low, high = roc_band(y_true, y_score, groups=groups)
    fig, ax = plt.subplots(figsize=(4.8, 4.8), dpi=110)
    ax.fill_between(grid, low, high, alpha=0.25, label="95% CI (bootstrap)")
    legend = "model"
    if auc is not None and auc.get("estimate") is not None:
        legend = f"model, AUC {auc['estimate']:.3f}"
        if auc.get("low") is not None and auc.get("high") is not None:
            legend += f" ({auc['low']:.3f}–{auc['high']:.3f})"
    ax.plot(grid, tpr, lw=2, label=legend)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    if operating_point is not None:
        sens, spec = operating_point
        ax.scatter([1 - spec], [sens], c="red", zorder=4, label="model operating point (chosen on val)")
    markers = "s^vD<>ph*"
    for i, reader in enumerate(readers):
        x, y = 1 - reader["specificity"], reader["sensitivity"]
        xerr = yerr = None
        if reader.get("specificity_ci"):
            lo, hi = reader["specificity_ci"]
            xerr = [[max(0.0, x - (1 - hi))], [max(0.0, (1 - lo) - x)]]
        if reader.get("sensitivity_ci"):
            lo, hi = reader["sensitivity_ci"]
            yerr = [[max(0.0, y - lo)], [max(0.0, hi - y)]]
        ax.errorbar(
            [x],
            [y],
            xerr=xerr,
            yerr=yerr,
            fmt=markers[i % len(markers)],
            ms=7,
            capsize=2,
            zorder=5,
            label=f"reader {reader['reader']}",
        )
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=7)
    return fig


def confusion_figure(matrix: Sequence[Sequence[float]], names: Sequence[str], *, title: str) -> plt.Figure:
    """Counts in a heat map; rows = reference, columns = prediction."""
    values = np.asarray(matrix)
    names = list(names) if len(names) == len(values) else [str(i) for i in range(len(values))]
    longest = max((len(n) for n in names), default=1)
    side = 1.4 + 0.6 * len(names) + 0.06 * longest
    fig, ax = plt.subplots(figsize=(side, side), dpi=110)
    ax.imshow(values, cmap="Blues")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:g}", ha="center", va="center", color="black" if v < values.max() / 2 else "white")
    rotate = longest > 3
    ax.set_xticks(range(len(names)), names, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="reference", title=title)
    return fig


def calibration_figure(y_true: np.ndarray, y_score: np.ndarray, *, title: str) -> plt.Figure:
    """Reliability diagram (quantile bins) with the diagonal, Brier score and ECE, over a histogram of the scores."""
    from sklearn.calibration import calibration_curve

    from osteon.metrics import brier_score_loss, expected_calibration_error

    observed, predicted = calibration_curve(y_true, y_score, n_bins=10, strategy="quantile")
    brier = brier_score_loss(y_true, y_score)
    ece = expected_calibration_error(y_true, y_score, n_bins=10)
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(4.5, 5.4), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    ax.plot(predicted, observed, marker="o", label=f"model (Brier {brier:.3f}, ECE {ece:.3f})")
    ax.set(ylabel="observed frequency", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=7)
    bins = np.linspace(0, 1, 21)
    hist.hist(y_score[y_true == 0], bins=bins, alpha=0.6, label="negative")
    hist.hist(y_score[y_true == 1], bins=bins, alpha=0.6, label="positive")
    hist.set(xlabel="predicted probability", ylabel="images")
    hist.legend(fontsize=7)
    return fig


def bland_altman_figure(truth: np.ndarray, prediction: np.ndarray, *, title: str) -> plt.Figure:
    """Differences against means with the bias and the 95% limits of agreement."""
    mean, diff = (truth + prediction) / 2, prediction - truth
    bias = float(np.mean(diff)) if len(diff) else 0.0
    sd = float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0
    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    ax.scatter(mean, diff, s=10)
    lines = ((bias, "-", "bias"), (bias + 1.96 * sd, "--", "+1.96 SD"), (bias - 1.96 * sd, "--", "−1.96 SD"))
    for value, style, name in lines:
        ax.axhline(value, ls=style, c="red", lw=1)
        ax.annotate(
            f"{name} {value:.3g}",
            xy=(1, value),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7,
            color="red",
        )
    ax.set(xlabel="mean of reference and prediction", ylabel="prediction − reference", title=title)
    return fig


def learning_curve_figure(
    log: pd.DataFrame, *, best_epoch: int | None = None, score_label: str = "validation score"
) -> plt.Figure | None:
    """Training/validation loss and validation score per epoch from ``logs/metrics.csv`` (None if empty).

    ``score_label`` names ``val/score`` (the monitored metric, logged higher-is-better: ``−validation MAE``).
    """
    if log.empty or "epoch" not in log:
        return None
    per_epoch = log.groupby("epoch").mean(numeric_only=True)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for column, style in (("train/loss", "-"), ("val/loss", "--")):
        if column in per_epoch and per_epoch[column].notna().any():
            values = per_epoch[column].dropna()  # validation may skip epochs (val_every): join the ones it has
            ax.plot(values.index, values, style, marker="o", label=column)
    ax.set(xlabel="epoch", ylabel="loss")
    if "val/score" in per_epoch and per_epoch["val/score"].notna().any():
        twin = ax.twinx()
        score = per_epoch["val/score"].dropna()
        twin.plot(score.index, score, ":", marker="s", c="green", label=score_label)
        twin.set_ylabel(f"{score_label} (higher is better)")
        twin.legend(loc="upper right", fontsize=7)
    if best_epoch is not None and best_epoch >= 0:
        ax.axvline(best_epoch, c="grey", lw=1, ls="-.", label=f"model.pt epoch ({best_epoch})")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title("Learning curves")
    return fig


def data_uri(fig: plt.Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (closes the figure)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def png_data_uri(data: bytes) -> str:
    """PNG bytes as a data URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# -- files in RUN/figures (osteon evaluate) ---------------------------------------------------------
def write_figures(run: str | Path, result: dict[str, Any]) -> list[Path]:
    """Draw the figures that fit ``result`` (an entry of metrics.json) into ``RUN/figures``.

    ROC, confusion matrix and calibration follow the keys of ``result``; task figures (Bland–Altman, mask and
    box overlays) come from the task's report adapter (:mod:`osteon.report.kinds`). Rows with an ``error``
    are left out.
    """
    from osteon.report.kinds import adapter_for
    from osteon.report.rundata import predictions_key

    rundir = RunDir(Path(run))
    stem = predictions_key(result, str(result.get("split", "test")))
    frame = rundir.read_predictions(stem)
    frame = frame[frame["error"] == ""] if "error" in frame else frame
    rundir.figures.mkdir(exist_ok=True)
    written: list[Path] = []
    if "auc" in result and "positive_class" in result:
        y, score = binary_arrays(frame, str(result["positive_class"]))
        point = _operating_point(result)
        fig = roc_figure(
            y, score, title=f"ROC — {stem}", groups=groups_of(frame), auc=result["auc"], operating_point=point
        )
        written.append(save_figure(fig, rundir.figures / f"{stem}_roc.png"))
    if "confusion_matrix" in result:
        from osteon.report.pubfigs import confusion_names

        names = confusion_names(result, rundir.read_json(rundir.state).get("task", {}))
        fig = confusion_figure(result["confusion_matrix"], names, title=f"Confusion — {stem}")
        written.append(save_figure(fig, rundir.figures / f"{stem}_confusion.png"))
    if "positive_class" in result:
        y, score = binary_arrays(frame, str(result["positive_class"]))
        fig = calibration_figure(y, score, title=f"Calibration — {stem}")
        written.append(save_figure(fig, rundir.figures / f"{stem}_calibration.png"))
    task = str(result.get("task") or rundir.read_json(rundir.state).get("task", {}).get("name", ""))
    written += adapter_for(task).write_figures(rundir, stem, frame, result)
    from osteon.report.pubfigs import write_extra_figures

    written += write_extra_figures(rundir, stem, frame, result)  # PR, FROC curve, learning curves
    return written


def binary_arrays(frame: pd.DataFrame, positive: str) -> tuple[np.ndarray, np.ndarray]:
    """``(y (N,) 0/1, score (N,))`` of a binary predictions table."""
    y = (frame["truth"].astype(str) == positive).to_numpy(int)
    return y, frame[f"prob_{positive}"].to_numpy(float)


def groups_of(frame: pd.DataFrame) -> np.ndarray | None:
    """Patient ids when every row has one (bootstrap by patient), else ``None``."""
    if "patient_id" in frame and frame["patient_id"].notna().all() and len(frame):
        return frame["patient_id"].astype(str).to_numpy()
    return None


def _operating_point(result: dict[str, Any]) -> tuple[float, float] | None:
    if "sensitivity" in result and "specificity" in result:
        return float(result["sensitivity"]["estimate"]), float(result["specificity"]["estimate"])
    return None


def save_figure(fig: plt.Figure, path: Path, *, vector: bool = True) -> Path:
    """Save a figure as PNG at ``path`` and close it; ``vector`` also writes ``.svg`` and ``.pdf`` beside it.

    The vector copies are for journals (any resolution; fonts embedded as TrueType, text editable in the SVG;
    :mod:`osteon.report.pubfigs`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    if vector:
        from osteon.report.pubfigs import save_vector

        save_vector(fig, path)
    plt.close(fig)
    return path
