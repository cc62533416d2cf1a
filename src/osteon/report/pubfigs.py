"""Figures for publication: vector copies of every figure, and the figures a paper adds (PR, FROC, learning curves).

Every figure :func:`osteon.report.figures.save_figure` writes into ``RUN/figures`` as PNG (for the HTML report)
is also written as **SVG and PDF** beside it: vector graphics print sharp at any journal resolution (the usual
300–600 dpi requirement applies to raster images only); PDF fonts are embedded as TrueType (Type 42, which
journals' systems accept) and SVG text stays text, editable in Inkscape or Illustrator.

:func:`write_extra_figures` (called by ``osteon evaluate`` through ``write_figures``) adds the precision–recall
curve (binary tasks), the FROC curve with its bootstrap-interval points (detection) and the learning curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from osteon.engine.rundir import RunDir

#: Vector formats written beside every PNG.
VECTOR_FORMATS = ("svg", "pdf")
#: Font and line settings of the vector copies (fonts embedded as TrueType, SVG text kept as text).
VECTOR_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}


def save_vector(fig: plt.Figure, png_path: Path) -> list[Path]:
    """Write ``fig`` as ``.svg`` and ``.pdf`` beside ``png_path``; returns their paths."""
    written = []
    with matplotlib.rc_context(VECTOR_RC):
        for suffix in VECTOR_FORMATS:
            path = png_path.with_suffix(f".{suffix}")
            fig.savefig(path, format=suffix, metadata=_metadata(suffix))
            written.append(path)
    return written


def _metadata(fmt: str) -> dict[str, Any]:
    # fixed metadata: the same figure gives the same file (no creation date), which keeps runs diffable
    if fmt == "pdf":
        return {"Creator": "Osteon", "Producer": None, "CreationDate": None}
    if fmt == "svg":
        return {"Creator": "Osteon", "Date": None}
    return {}


def confusion_names(result: dict[str, Any], task_state: dict[str, Any]) -> list[str]:
    """Axis labels of a confusion matrix, in its row order.

    Binary reports order rows negative, positive (``[[tn, fp], [fn, tp]]``): the labels are the class names in
    that order, as ``target = name`` when the names are bare numbers (``fractured = 1`` says more than ``1``).
    Other reports carry ``class_names`` in their own order.
    """
    size = len(result["confusion_matrix"])
    names = [str(n) for n in result.get("class_names") or []]
    if len(names) == size:
        return names
    classes = [str(n) for n in task_state.get("class_names", [])]
    positive = result.get("positive_class", task_state.get("positive_class"))
    if size == 2 and positive is not None and len(classes) == 2:
        negative = next(c for c in classes if c != str(positive))
        pair = [negative, str(positive)]
        target = task_state.get("target")
        if target and all(_is_number(n) for n in pair):
            return [f"{target} = {n}" for n in pair]
        return pair
    return classes if len(classes) == size else [str(i) for i in range(size)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def pr_figure(y_true: np.ndarray, y_score: np.ndarray, *, title: str) -> plt.Figure:
    """Precision–recall curve with average precision and the prevalence (a random model's precision)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y_true, y_score)
    ap = average_precision_score(y_true, y_score)
    prevalence = float(np.mean(y_true)) if len(y_true) else float("nan")
    fig, ax = plt.subplots(figsize=(4.8, 4.8), dpi=110)
    ax.step(recall, precision, where="post", lw=2, label=f"model, AP {ap:.3f}")
    ax.axhline(prevalence, ls="--", c="grey", lw=1, label=f"prevalence {prevalence:.3f}")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left", fontsize=7)
    return fig


def froc_figure(froc: dict[str, Any], *, title: str) -> plt.Figure | None:
    """FROC curve (lesion sensitivity against false positives per image, log axis) with the reported rates.

    ``froc`` is the ``froc`` entry of a detection evaluation: ``curve`` points and
    ``sensitivity_at_fp_per_image`` intervals (plotted as points with error bars). ``None`` without a curve.
    """
    curve = froc.get("curve") or {}
    fpi, sens = np.asarray(curve.get("fp_per_image", []), float), np.asarray(curve.get("sensitivity", []), float)
    if len(fpi) == 0:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 4.2), dpi=110)
    positive = fpi > 0
    ax.step(np.where(positive, fpi, np.nan), sens, where="post", lw=2, label="model")
    rates, estimates, lows, highs = [], [], [], []
    for rate, ci in (froc.get("sensitivity_at_fp_per_image") or {}).items():
        if isinstance(ci, dict) and ci.get("estimate") is not None:
            rates.append(float(rate))
            estimates.append(float(ci["estimate"]))
            lows.append(float(ci["estimate"]) - float(ci.get("low") if ci.get("low") is not None else ci["estimate"]))
            highs.append(
                float(ci.get("high") if ci.get("high") is not None else ci["estimate"]) - float(ci["estimate"])
            )
    if rates:
        ax.errorbar(rates, estimates, yerr=[lows, highs], fmt="o", ms=4, capsize=2, label="reported rates (95% CI)")
    mean = (froc.get("mean_sensitivity") or {}).get("estimate")
    ax.set_xscale("log")
    ax.set(
        xlabel="false positives per image",
        ylabel="lesion sensitivity",
        ylim=(0, 1.01),
        title=title + (f" (mean sensitivity {mean:.3f})" if isinstance(mean, int | float) else ""),
    )
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(loc="lower right", fontsize=7)
    return fig


def write_extra_figures(run: RunDir, stem: str, frame: pd.DataFrame, result: dict[str, Any]) -> list[Path]:
    """PR curve (binary), FROC curve (detection) and learning curves into ``RUN/figures`` (PNG, SVG, PDF)."""
    import warnings

    from osteon.report.figures import binary_arrays, learning_curve_figure, save_figure

    written: list[Path] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        positive = result.get("positive_class")
        if positive is not None and f"prob_{positive}" in frame:
            y, score = binary_arrays(frame, str(positive))
            if 0 < y.sum() < len(y):
                written.append(
                    save_figure(pr_figure(y, score, title=f"Precision–recall — {stem}"), run.figures / f"{stem}_pr.png")
                )
        if isinstance(result.get("froc"), dict):
            fig = froc_figure(result["froc"], title=f"FROC — {stem}")
            if fig is not None:
                written.append(save_figure(fig, run.figures / f"{stem}_froc.png"))
        if run.metrics_log.is_file():
            log = pd.read_csv(run.metrics_log)
            training = run.read_json(run.training)
            best = training.get("best_epoch")
            monitor = (training.get("monitor") or {}).get("name") or "score"
            fig = learning_curve_figure(
                log, best_epoch=best if isinstance(best, int) else None, score_label=f"val {monitor}"
            )
            if fig is not None:
                written.append(save_figure(fig, run.figures / "learning_curves.png"))
    return written
