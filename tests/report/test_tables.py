"""Generic rendering of metrics dicts: any task's nested results become tables."""

from __future__ import annotations

import math

from osteon.report.tables import fmt, fmt_ci, fmt_p, metric_tables, two_by_two


def ci(e, lo, hi):
    return {"estimate": e, "low": lo, "high": hi, "n_valid": 100}


def test_formatting():
    assert fmt(None) == fmt(math.nan) == "—"
    assert fmt(0.12345) == "0.123" and fmt(1234567) == "1 234 567" and fmt(True) == "yes"
    assert fmt_ci(ci(0.8, 0.7, 0.9)) == "0.800 (0.700–0.900)"
    assert fmt_ci({"estimate": 0.8, "low": None, "high": None}) == "0.800"
    assert fmt_p(0.0001) == "<0.001" and fmt_p(0.04) == "0.040" and fmt_p(None) == "—"


def test_segmentation_like_results_become_tables():
    result = {
        "task": "segment",
        "n_images": 12,
        "dice": ci(0.81, 0.75, 0.86),
        "hausdorff95_mm": ci(4.2, 3.1, 5.9),
        "per_class": [
            {"class": "fracture", "dice": ci(0.7, 0.6, 0.8), "n": 12},
            {"class": "bone", "dice": ci(0.9, 0.88, 0.93), "n": 12},
        ],
        "froc": {"sensitivity_at_fp": {"0.5": ci(0.6, 0.5, 0.7), "1": ci(0.7, 0.6, 0.8)}},
        "curve": {"fp": list(range(100)), "sens": list(range(100))},
        "bootstrap": {"n_resamples": 100},
    }
    tables = {t.caption: t for t in metric_tables(result, title="Metrics")}
    assert [r[0] for r in tables["Metrics"].rows] == ["dice", "hausdorff95 mm"]
    assert tables["Metrics"].rows[0][1] == "0.810 (0.750–0.860)"
    assert tables["Metrics — per class"].header == ["class", "dice", "n"]
    assert tables["Metrics — per class"].rows[1] == ["bone", "0.900 (0.880–0.930)", "12"]
    froc = tables["Metrics — froc"]  # a dict of rows: one row per key, one column per inner key
    assert froc.header == ["", "0.5", "1"] and froc.rows == [
        ["sensitivity_at_fp", "0.600 (0.500–0.700)", "0.700 (0.600–0.800)"]
    ]
    at = metric_tables({"sensitivity_at": {"0.5": ci(0.6, 0.5, 0.7), "1": ci(0.7, 0.6, 0.8)}}, title="M")[0]
    assert at.rows == [["0.5", "0.600 (0.500–0.700)"], ["1", "0.700 (0.600–0.800)"]]  # a dict of intervals
    per_label = metric_tables(
        {"per_label": {"a": {"auc": ci(0.7, 0.6, 0.8), "n": 3}, "b": {"auc": ci(0.9, 0.8, 1.0), "n": 4}}}, title="M"
    )
    assert per_label[0].header == ["", "AUC", "n"] and per_label[0].rows[1] == ["b", "0.900 (0.800–1.000)", "4"]
    assert not any("curve" in c or "bootstrap" in c for c in tables)  # curves are for figures


def test_confusion_matrix_uses_class_names_and_2x2():
    tables = metric_tables({"confusion_matrix": [[5, 1], [2, 7]], "class_names": ["neg", "pos"]}, title="M")
    (matrix,) = tables
    assert matrix.kind == "matrix" and matrix.header == ["truth ↓ / predicted →", "neg", "pos"]
    assert matrix.rows[1] == ["pos", "2", "7"]
    table = two_by_two([[5, 1], [2, 7]], "pos")
    assert table.rows[0] == ["reference positive (pos)", "7", "2", "9"] and table.rows[2][-1] == "15"
