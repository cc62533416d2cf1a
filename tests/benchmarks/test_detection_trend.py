"""The detection benchmark's budget-trend figure and table (``benchmarks/_detection_trend.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _detection_trend import (
    compute_figure,
    compute_markdown,
    compute_table,
    trend_figure,
    trend_markdown,
    trend_table,
)

MODELS = ("osteon centernet", "yolov8n", "yolo26n")


def _summary(
    budget: float, values: dict[str, list[float]], models: tuple[str, ...] = MODELS, epochs: tuple[int, int] = (20, 22)
) -> dict:
    """An across-seed summary as ``across_seeds`` writes it (only the keys the trend reads)."""
    per_model = {
        m: {"map50": {"values": values[m], "mean": sum(values[m]) / len(values[m])}, "epochs": {"values": list(epochs)}}
        for m in models
    }
    means = {m: per_model[m]["map50"]["mean"] for m in models}
    strongest = max(models[1:], key=means.__getitem__)
    per_seed = [round(values[models[0]][i] / max(values[m][i] for m in models[1:]), 3) for i in range(2)]
    return {
        "budget_min": budget,
        "out": f"runs/{budget:g}-{epochs[0]}",
        "runs": [f"runs/{budget:g}-seed{i}" for i in range(2)],
        "seeds": [0, 1],
        "per_model": per_model,
        "strongest_rival_on_average": strongest,
        "map50_ratio_osteon_over_strongest_rival": per_seed,
        "map50_ratio_of_seed_means": round(means[models[0]] / means[strongest], 3),
    }


def test_budgets_are_sorted_and_the_ratios_are_the_summaries_own(tmp_path: Path) -> None:
    long = _summary(30, {"osteon centernet": [0.08, 0.06], "yolov8n": [0.01, 0.02], "yolo26n": [0.02, 0.01]})
    short = _summary(10, {"osteon centernet": [0.01, 0.03], "yolov8n": [0.02, 0.01], "yolo26n": [0.01, 0.01]})
    table = trend_table([long, short])
    assert [r["budget_min"] for r in table["budgets"]] == [10.0, 30.0]
    assert table["models"] == list(MODELS)
    assert table["budgets"][1]["ratio_per_seed"] == [4.0, 3.0]
    assert table["budgets"][1]["ratio_of_means"] == pytest.approx(0.07 / 0.015, abs=1e-3)
    assert table["budgets"][0]["values"]["osteon centernet"] == [0.01, 0.03]
    rows = trend_markdown(table).splitlines()
    assert len(rows) == 4 and rows[2].startswith("| 10 |") and rows[3].startswith("| 30 |")
    assert "4.00, 3.00" in rows[3]
    figure = trend_figure(table, tmp_path / "trend.png", target_ratio=2.0, title="test")
    assert figure.is_file() and figure.stat().st_size > 1000
    assert (tmp_path / "trend.svg").is_file()


def test_a_repeated_budget_or_other_models_are_refused() -> None:
    values = {"osteon centernet": [0.01, 0.03], "yolov8n": [0.02, 0.01], "yolo26n": [0.01, 0.01]}
    with pytest.raises(ValueError, match="one across-seed summary per budget"):
        trend_table([_summary(10, values), _summary(10, values)])
    other = _summary(30, {"osteon centernet": [0.1, 0.1], "yolov8n": [0.1, 0.1]}, models=MODELS[:2])
    with pytest.raises(ValueError, match="models"):
        trend_table([_summary(10, values), other])


def test_the_compute_view_puts_every_seed_of_every_folder_by_osteons_epochs(tmp_path: Path) -> None:
    slow = _summary(
        10, {"osteon centernet": [0.01, 0.03], "yolov8n": [0.02, 0.01], "yolo26n": [0.01, 0.02]}, epochs=(21, 25)
    )
    fast = _summary(
        10, {"osteon centernet": [0.05, 0.04], "yolov8n": [0.01, 0.01], "yolo26n": [0.02, 0.01]}, epochs=(44, 40)
    )
    long = _summary(30, {"osteon centernet": [0.08, 0.06], "yolov8n": [0.01, 0.02], "yolo26n": [0.02, 0.01]})
    table = compute_table([fast, long, slow])  # a budget may repeat here
    rows = table["rows"]
    assert table["model"] == "osteon centernet"
    assert [r["epochs"] for r in rows] == [20, 21, 22, 25, 40, 44]
    first = rows[1]  # the slow 10-minute folder's seed 0
    assert (first["budget_min"], first["seed"], first["score"]) == (10.0, 0, 0.01)
    assert (first["strongest_rival"], first["rival_score"], first["ratio"]) == ("yolov8n", 0.02, 0.5)
    assert rows[-1]["run"] == "runs/10-seed0" and rows[-1]["ratio"] == 2.5
    lines = compute_markdown(table).splitlines()
    assert len(lines) == 2 + 6 and lines[3].startswith("| 10 | 0 | 21 | 0.010 | yolov8n 0.020 | 0.50 |")
    figure = compute_figure(table, tmp_path / "compute.png", target_ratio=2.0)
    assert figure.is_file() and figure.stat().st_size > 1000
    with pytest.raises(ValueError, match="models"):
        compute_table([slow, _summary(30, {"osteon centernet": [0.1, 0.1], "yolov8n": [0.1, 0.1]}, models=MODELS[:2])])


def test_the_interval_of_the_ratio_of_means_is_read_drawn_and_printed(tmp_path: Path) -> None:
    values = {"osteon centernet": [0.08, 0.06], "yolov8n": [0.01, 0.02], "yolo26n": [0.02, 0.01]}
    with_ci = _summary(30, values) | {"map50_ratio_intervals": {"of_seed_means": {"low": 1.8, "high": float("inf")}}}
    table = trend_table([_summary(10, values), with_ci])
    assert table["budgets"][0]["ratio_of_means_ci"] is None  # a summary from before the intervals
    assert table["budgets"][1]["ratio_of_means_ci"] == [1.8, float("inf")]
    rows = trend_markdown(table).splitlines()
    assert rows[3].endswith("| 4.67 (1.80–∞) |") and rows[2].endswith("| 4.67 |")
    assert trend_figure(table, tmp_path / "trend.png", target_ratio=2.0).is_file()
