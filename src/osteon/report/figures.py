"""PNG figures of an evaluation: ROC with a bootstrap CI band, confusion matrix, calibration, Bland–Altman."""

from __future__ import annotations

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


def write_figures(run: str | Path, result: dict[str, Any]) -> list[Path]:
    """Draw the figures that fit ``result`` (an entry of metrics.json) into ``RUN/figures``."""
    rundir = RunDir(Path(run))
    frame_path = rundir.path / result["predictions_file"]
    frame = pd.read_csv(frame_path, dtype={"truth": "string", "prediction": "string"}, keep_default_na=True)
    frame = frame[frame["error"].isna() | (frame["error"] == "")] if "error" in frame else frame
    rundir.figures.mkdir(exist_ok=True)
    stem = frame_path.stem.removeprefix("predictions_")
    written: list[Path] = []
    if "auc" in result and "positive_class" in result:
        written.append(_roc_figure(rundir, stem, frame, result))
    if "confusion_matrix" in result:
        written.append(_confusion_figure(rundir, stem, result))
    if "positive_class" in result:
        written.append(_calibration_figure(rundir, stem, frame, result))
    if result.get("task") == "regress":
        written.append(_bland_altman_figure(rundir, stem, frame))
    return written


def _groups(frame: pd.DataFrame) -> np.ndarray | None:
    if "patient_id" in frame and frame["patient_id"].notna().all():
        return frame["patient_id"].astype(str).to_numpy()
    return None


def _roc_figure(rundir: RunDir, stem: str, frame: pd.DataFrame, result: dict[str, Any]) -> Path:
    positive = str(result["positive_class"])
    y = (frame["truth"].astype(str) == positive).to_numpy(int)
    score = frame[f"prob_{positive}"].to_numpy(float)
    grid, tpr, low, high = roc_band(y, score, groups=_groups(frame))
    auc = result["auc"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.fill_between(grid, low, high, alpha=0.25, label="95% CI (bootstrap)")
    ax.plot(grid, tpr, lw=2, label=f"AUC {auc['estimate']:.3f} ({auc['low']:.3f}–{auc['high']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    if "sensitivity" in result and "specificity" in result:
        sens, spec = result["sensitivity"]["estimate"], result["specificity"]["estimate"]
        ax.scatter([1 - spec], [sens], c="red", zorder=3, label="operating point (chosen on val)")
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=f"ROC — {stem}", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, rundir.figures / f"{stem}_roc.png")


def _confusion_figure(rundir: RunDir, stem: str, result: dict[str, Any]) -> Path:
    matrix = np.asarray(result["confusion_matrix"])
    names = result.get("class_names") or [str(i) for i in range(len(matrix))]
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 1.0 + 0.6 * len(names)), dpi=120)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(int(v)), ha="center", va="center", color="black" if v < matrix.max() / 2 else "white")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="truth", title=f"Confusion — {stem}")
    return _save(fig, rundir.figures / f"{stem}_confusion.png")


def _calibration_figure(rundir: RunDir, stem: str, frame: pd.DataFrame, result: dict[str, Any]) -> Path:
    from sklearn.calibration import calibration_curve

    positive = str(result["positive_class"])
    y = (frame["truth"].astype(str) == positive).to_numpy(int)
    score = frame[f"prob_{positive}"].to_numpy(float)
    observed, predicted = calibration_curve(y, score, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.plot(predicted, observed, marker="o")
    ax.set(
        xlabel="predicted probability",
        ylabel="observed frequency",
        title=f"Calibration — {stem}",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    return _save(fig, rundir.figures / f"{stem}_calibration.png")


def _bland_altman_figure(rundir: RunDir, stem: str, frame: pd.DataFrame) -> Path:
    truth = pd.to_numeric(frame["truth"], errors="coerce").to_numpy(float)
    pred = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(float)
    mean, diff = (truth + pred) / 2, pred - truth
    bias, sd = float(np.mean(diff)), float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.scatter(mean, diff, s=10)
    for value, style in ((bias, "-"), (bias + 1.96 * sd, "--"), (bias - 1.96 * sd, "--")):
        ax.axhline(value, ls=style, c="red", lw=1)
    ax.set(xlabel="mean of truth and prediction", ylabel="prediction − truth", title=f"Bland–Altman — {stem}")
    return _save(fig, rundir.figures / f"{stem}_bland_altman.png")


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
