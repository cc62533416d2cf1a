"""Subgroups and shortcuts: a covariate that gives the label away must be visible."""

from __future__ import annotations

import pytest

from osteon.report import RunData, shortcut_warnings, subgroup_table, write_report
from osteon.report.subgroups import cramers_v, levels_of, subgroup_columns


def test_hardware_shortcut_is_flagged_with_its_numbers(shortcut_run):
    data = RunData.load(shortcut_run)
    warnings = shortcut_warnings(data, subgroup_columns(data))
    assert [(w.column, w.level, w.label) for w in warnings] == [("hardware", "1", "1")]
    frame = data.manifest.frame
    with_hardware = frame[frame["hardware"].astype(str) == "1"]
    warning = warnings[0]
    assert warning.n == len(with_hardware) and warning.n_label == int((with_hardware["label"] == "1").sum())
    assert warning.share >= 0.95
    assert f"{warning.n_label} of {warning.n} images" in warning.message and "shortcut" in warning.message


def test_balanced_covariates_raise_no_warning(classify_run):
    data = RunData.load(classify_run)
    assert shortcut_warnings(data, subgroup_columns(data)) == []


def test_subgroup_rows_show_n_prevalence_and_intervals(shortcut_run):
    data = RunData.load(shortcut_run)
    table = subgroup_table(data, "test", ["hardware", "body_part"], n_resamples=100)
    rows = {(r[0], r[1]): r for r in table.rows}
    assert set(rows) == {("hardware", "0"), ("hardware", "1"), ("body_part", "hand"), ("body_part", "leg")}
    test = data.manifest.frame[data.manifest.frame["split"] == "test"]
    hw = test[test["hardware"].astype(str) == "1"]
    assert rows[("hardware", "1")][2] == str(len(hw))
    assert float(rows[("hardware", "1")][4]) == pytest.approx((hw["label"] == "1").mean(), abs=1e-3)
    assert "(" in rows[("body_part", "hand")][5]  # AUC with an interval
    assert table.header[:5] == ["covariate", "level", "n", "positives", "prevalence"]


def test_report_shows_the_shortcut(shortcut_run):
    html = write_report(shortcut_run, gallery_size=0, n_resamples=100).read_text()
    assert html.count("Possible shortcut") >= 2  # top of the report and failure analysis
    assert "hardware = 1" in html and "Subgroups — test" in html


def test_levels_and_association():
    import pandas as pd

    ages = pd.Series([20, 30, 40, 50, 60, 70, 80, 90, None])
    levels = levels_of(ages)
    assert levels.nunique() == 5 and (levels == "(missing)").sum() == 1
    same = pd.Series(list("aabb" * 5))
    assert cramers_v(same, same) == pytest.approx(1.0)
    assert cramers_v(same, pd.Series(list("abab" * 5))) == pytest.approx(0.0, abs=1e-9)
