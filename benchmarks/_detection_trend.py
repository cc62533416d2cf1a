"""How a side-by-side benchmark's scores move with the training budget: one figure from its across-seed summaries.

Each summary is one budget's ``summary.json`` written by ``fracatlas_detection.py``'s ``across_seeds``. The left
panel draws every seed's test mAP@0.5 and the seed mean per model against the budget; the right one the ratio of
the first model (Osteon) to the strongest other one, per seed and on the seed means, against the issue's target.
Seeds are drawn, not only means: at these budgets one seed can move a model by several times.

A budget is wall-clock time on a shared VM whose speed varies between days (the same 10 minutes gave Osteon 21-27
epochs on one day and 44 on another), so :func:`compute_table` and :func:`compute_figure` draw the same seeds against
the compute the window gave instead: the epochs Osteon trained in it (every model shared the CPU alike). Budgets may
repeat there (the same budget on different days).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _detection_ratio import ratio_text
from matplotlib.ticker import FuncFormatter

from osteon.report.figures import save_figure


def trend_table(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per budget (sorted): every model's per-seed test mAP@0.5 and its mean, and the first model's ratio to the
    strongest other one, per seed and on the means, as ``across_seeds`` computed them. Raises ``ValueError`` when a
    budget repeats or the models differ."""
    ordered = sorted(summaries, key=lambda s: s["budget_min"])
    budgets = [float(s["budget_min"]) for s in ordered]
    if len(set(budgets)) != len(budgets):
        raise ValueError(f"one across-seed summary per budget, got budgets {budgets}")
    models = list(ordered[0]["per_model"])
    for s in ordered[1:]:
        if list(s["per_model"]) != models:
            raise ValueError(f"{s['out']}: models {list(s['per_model'])}, not {models}")
    rows = [
        {
            "budget_min": float(s["budget_min"]),
            "seeds": s["seeds"],
            "values": {m: s["per_model"][m]["map50"]["values"] for m in models},
            "means": {m: s["per_model"][m]["map50"]["mean"] for m in models},
            "strongest_rival": s["strongest_rival_on_average"],
            "ratio_per_seed": s["map50_ratio_osteon_over_strongest_rival"],
            "ratio_of_means": s["map50_ratio_of_seed_means"],
            "ratio_of_means_ci": _interval(s),
        }
        for s in ordered
    ]
    return {"models": models, "budgets": rows}


def _interval(summary: dict[str, Any]) -> list[float] | None:
    """``[low, high]`` of the ratio of the seed means (``_detection_ratio.py``), or None for older summaries."""
    intervals = summary.get("map50_ratio_intervals")
    return [intervals["of_seed_means"]["low"], intervals["of_seed_means"]["high"]] if intervals else None


def trend_figure(table: dict[str, Any], path: Path, *, target_ratio: float | None = None, title: str = "") -> Path:
    """Draw :func:`trend_table`'s result (score and ratio against the budget) into ``path`` (PNG, SVG, PDF)."""
    models, rows = table["models"], table["budgets"]
    budgets = np.array([r["budget_min"] for r in rows])
    fig, (scores, ratios) = plt.subplots(1, 2, figsize=(10, 4.2))
    spread = 0.03 * (budgets.max() - budgets.min() if len(budgets) > 1 else budgets[0])
    for k, model in enumerate(models):
        offset = (k - (len(models) - 1) / 2) * spread  # side by side, so seeds of different models do not overlap
        means = [r["means"][model] for r in rows]
        line = scores.plot(budgets + offset, means, marker="o", markersize=7, label=model, zorder=3)[0]
        for b, r in zip(budgets, rows, strict=True):
            seeds = [v for v in r["values"][model] if v is not None]
            scores.scatter(np.full(len(seeds), b + offset), seeds, s=14, color=line.get_color(), alpha=0.5)
    scores.set_xlabel("training budget per model (min)")
    scores.set_ylabel("test mAP@0.5 (dots: seeds; line: mean)")
    scores.set_xticks(budgets)
    scores.legend(fontsize=8)
    for b, r in zip(budgets, rows, strict=True):
        seeds = [v for v in r["ratio_per_seed"] if v]
        ratios.scatter(np.full(len(seeds), b), seeds, s=14, color="grey", alpha=0.7)
    known = [(b, r["ratio_of_means"]) for b, r in zip(budgets, rows, strict=True) if r["ratio_of_means"]]
    if known:
        ratios.plot(*zip(*known, strict=True), marker="o", color="black", label="ratio of the seed means")
    bars = [(b, r["ratio_of_means_ci"]) for b, r in zip(budgets, rows, strict=True) if r.get("ratio_of_means_ci")]
    if bars:  # an infinite upper end (a rival at 0 on some resamples) is drawn to the top of the panel
        finite = [v for _, ci in bars for v in ci if np.isfinite(v)]
        top = max(finite + [v for r in rows for v in r["ratio_per_seed"] if v])
        for i, (b, (low, high)) in enumerate(bars):
            label = "95 % CI of the ratio of the means (test images resampled)" if i == 0 else None
            ratios.vlines(b, low, high if np.isfinite(high) else 1.1 * top, color="black", linewidth=1, label=label)
    _ratio_guides(ratios, target_ratio)
    ratios.set_xlabel("training budget per model (min)")
    ratios.set_ylabel("Osteon / strongest rival, mAP@0.5 (dots: seeds)")
    ratios.set_xticks(budgets)
    ratios.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def trend_markdown(table: dict[str, Any]) -> str:
    """One row per budget: each model's seed mean and Osteon's ratios."""
    models = table["models"]
    lines = [
        f"| budget (min) | {' | '.join(models)} | ratio per seed | ratio of the means |",
        "|---" * (len(models) + 3) + "|",
    ]
    for r in table["budgets"]:
        means = " | ".join(f"{r['means'][m]:.3f}" if r["means"][m] is not None else "n/a" for m in models)
        per_seed = ", ".join(f"{v:.2f}" if v is not None else "n/a" for v in r["ratio_per_seed"])
        of_means = f"{r['ratio_of_means']:.2f}" if r["ratio_of_means"] is not None else "n/a"
        if r.get("ratio_of_means_ci") and r["ratio_of_means"] is not None:
            low, high = r["ratio_of_means_ci"]
            of_means = ratio_text({"estimate": r["ratio_of_means"], "low": low, "high": high})
        lines.append(f"| {r['budget_min']:g} | {means} | {per_seed} | {of_means} |")
    return "\n".join(lines)


def compute_table(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per seed of every across-seed summary (a budget may repeat), sorted by the epochs the first model
    (Osteon) trained: its test mAP@0.5, the strongest other model's on that seed, and the ratio ``across_seeds``
    computed for the seed. Raises ``ValueError`` when the models differ."""
    models = list(summaries[0]["per_model"])
    for s in summaries[1:]:
        if list(s["per_model"]) != models:
            raise ValueError(f"{s['out']}: models {list(s['per_model'])}, not {models}")
    first, rivals = models[0], models[1:]
    rows = []
    for s in summaries:
        per_model = s["per_model"]
        for i, seed in enumerate(s["seeds"]):
            scores = {m: per_model[m]["map50"]["values"][i] for m in models}
            known = [m for m in rivals if scores[m] is not None]
            strongest = max(known, key=scores.__getitem__) if known else None
            rows.append(
                {
                    "budget_min": float(s["budget_min"]),
                    "seed": seed,
                    "run": s["runs"][i] if "runs" in s else s["out"],
                    "epochs": per_model[first]["epochs"]["values"][i],
                    "score": scores[first],
                    "strongest_rival": strongest,
                    "rival_score": scores[strongest] if strongest else None,
                    "ratio": s["map50_ratio_osteon_over_strongest_rival"][i],
                }
            )
    rows.sort(key=lambda r: (r["epochs"] is None, r["epochs"] or 0, r["budget_min"]))
    return {"model": first, "rows": rows}


def compute_figure(table: dict[str, Any], path: Path, *, target_ratio: float | None = None, title: str = "") -> Path:
    """Draw :func:`compute_table`'s rows: the scores and the ratio per seed against Osteon's epochs, one marker per
    budget, into ``path`` (PNG, SVG, PDF)."""
    rows = [r for r in table["rows"] if r["epochs"] is not None]
    fig, (scores, ratios) = plt.subplots(1, 2, figsize=(10, 4.2))
    markers = dict(zip(sorted({r["budget_min"] for r in rows}), "osD^vP*X", strict=False))
    for budget, marker in markers.items():
        mine = [r for r in rows if r["budget_min"] == budget]
        epochs = [r["epochs"] for r in mine]
        scores.scatter(
            epochs,
            [r["score"] for r in mine],
            marker=marker,
            color="tab:blue",
            label=f"{table['model']}, {budget:g} min",
        )
        rival = [(r["epochs"], r["rival_score"]) for r in mine if r["rival_score"] is not None]
        if rival:
            scores.scatter(
                *zip(*rival, strict=True),
                marker=marker,
                facecolors="none",
                edgecolors="tab:orange",
                label=f"strongest rival, {budget:g} min",
            )
        known = [(r["epochs"], r["ratio"]) for r in mine if r["ratio"]]
        if known:
            ratios.scatter(*zip(*known, strict=True), marker=marker, color="black", label=f"{budget:g} min")
    _ratio_guides(ratios, target_ratio)
    for axis in (scores, ratios):
        axis.set_xlabel(f"epochs {table['model'].split()[0]} trained in the window\n(the compute it gave)")
        axis.legend(fontsize=7)
    scores.set_ylabel("test mAP@0.5 per seed")
    ratios.set_ylabel("Osteon / strongest rival, mAP@0.5, per seed")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def compute_markdown(table: dict[str, Any]) -> str:
    """One row per seed, by the epochs Osteon trained."""
    name = table["model"]
    lines = [
        f"| budget (min) | seed | {name} epochs | {name} mAP@0.5 | strongest rival (that seed) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in table["rows"]:
        rival = f"{r['strongest_rival']} {r['rival_score']:.3f}" if r["strongest_rival"] else "n/a"
        score = f"{r['score']:.3f}" if r["score"] is not None else "n/a"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "n/a"
        lines.append(f"| {r['budget_min']:g} | {r['seed']} | {r['epochs']} | {score} | {rival} | {ratio} |")
    return "\n".join(lines)


def _ratio_guides(axis: Any, target_ratio: float | None) -> None:
    """A ratio panel's log scale, its parity line and the issue's target."""
    if target_ratio:
        axis.axhline(target_ratio, linestyle="--", color="tab:red", label=f"target {target_ratio:g}×")
    axis.axhline(1.0, linestyle=":", color="grey")
    axis.set_yscale("log")
    as_ratio = FuncFormatter(lambda value, _: f"{value:g}×")  # 2×, 3×, not matplotlib's 2 × 10⁰
    axis.yaxis.set_major_formatter(as_ratio)
    axis.yaxis.set_minor_formatter(as_ratio)
