"""The files of ``osteon probe``: ``probe.json`` and a bar chart of every probed backbone (PNG, SVG, PDF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from osteon.report.figures import plt, save_figure  # figures sets the Agg backend

#: (probe, metric) pairs in the order the figure shows them.
_PANELS = (("knn", "accuracy"), ("linear", "accuracy"), ("knn", "auc"), ("linear", "auc"))
_NAMES = {"knn": "k-NN", "linear": "linear probe", "accuracy": "accuracy", "auc": "AUC"}


def probe_figure(result: dict[str, Any]) -> plt.Figure:
    """Grouped bars: accuracy (and AUC) of the k-NN and linear probes per backbone, with 95% bootstrap CIs."""
    labels = list(result["results"])
    panels = [p for p in _PANELS if all(p[1] in result["results"][b].get(p[0], {}) for b in labels)]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(panels), 3.6), dpi=110)
    width = 0.8 / max(1, len(labels))
    x = np.arange(len(panels))
    for i, label in enumerate(labels):
        values = [result["results"][label][probe][metric] for probe, metric in panels]
        estimate = np.array([v["estimate"] for v in values], dtype=float)
        low = np.array([v["low"] for v in values], dtype=float)
        high = np.array([v["high"] for v in values], dtype=float)
        errors = np.nan_to_num(np.vstack([estimate - low, high - estimate]), nan=0.0).clip(min=0)
        bars = ax.bar(x + (i - (len(labels) - 1) / 2) * width, estimate, width, yerr=errors, capsize=3, label=label)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in estimate], fontsize=7, padding=2)
    ax.set_xticks(x, [f"{_NAMES[p]}\n{_NAMES[m]}" for p, m in panels])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(f"{result.get('eval_split', 'test')} split (95% CI)")
    majority = result.get("majority_accuracy")
    if majority is not None:  # what always answering the commonest class scores (AUC: 0.5)
        ax.axhline(majority, color="grey", lw=0.8, ls=":", label=f"accuracy of the commonest class ({majority:.2f})")
    ax.set_title(
        f"Frozen features · {result.get('target')} · train {result.get('n_train')} / "
        f"{result.get('eval_split')} {result.get('n_eval')} images",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    return fig


def write_probe(result: dict[str, Any], out: str | Path) -> list[Path]:
    """Write ``probe.json`` and ``probe.png`` (+ ``.svg``/``.pdf``) into ``out``; returns the paths written."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "probe.json"
    data.write_text(json.dumps(result, indent=2, default=str) + "\n")
    png = save_figure(probe_figure(result), folder / "probe.png")
    return [data, png, png.with_suffix(".svg"), png.with_suffix(".pdf")]
