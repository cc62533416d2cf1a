"""Readers CSV: validation that names the bad row, operating points, and their place on the ROC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from osteon.errors import DatasetFormatError
from osteon.report import RunData, read_readers, write_report
from osteon.report.readers import reader_points, wilson
from osteon.report.rundata import usable


def write_csv(path, rows, columns=("reader", "case", "call")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def test_reader_operating_points_are_counted_by_hand(classify_run, tmp_path):
    data = RunData.load(classify_run)
    rows = usable(data.predictions["test"])
    truth = (rows["truth"] == "1").to_numpy(int)
    names = [p.split("/")[-1] for p in rows["case"]]
    # reader A calls the truth on every case but the first positive (one FN); reader B calls every case positive
    first_positive = int(np.flatnonzero(truth == 1)[0])
    calls = [("A", n, str(t if i != first_positive else 0)) for i, (n, t) in enumerate(zip(names, truth, strict=True))]
    calls += [("B", n.removesuffix(".png"), "yes") for n in names]  # ids without extension, yes/no calls
    parsed = read_readers(write_csv(tmp_path / "r.csv", calls), rows, data)
    table, points = reader_points(parsed, rows, positive="1", threshold=0.5)
    by_reader = {p["reader"]: p for p in points}
    assert by_reader["A"]["sensitivity"] == pytest.approx((truth.sum() - 1) / truth.sum())
    assert by_reader["A"]["specificity"] == 1.0
    assert by_reader["B"]["sensitivity"] == 1.0 and by_reader["B"]["specificity"] == 0.0
    assert by_reader["A"]["sensitivity_ci"][0] < by_reader["A"]["sensitivity"] <= by_reader["A"]["sensitivity_ci"][1]
    assert [r[0] for r in table.rows] == ["A", "B"]


def test_readers_appear_in_the_report(classify_run, tmp_path):
    data = RunData.load(classify_run)
    cases = usable(data.predictions["test"])["case"]
    path = write_csv(tmp_path / "r.csv", [("R1", c, "1" if i % 2 else "0") for i, c in enumerate(cases)])
    html = write_report(classify_run, readers=path, gallery_size=0).read_text()
    assert 'id="readers"' in html and "Human readers and the model on the same cases" in html
    assert "markers: human readers" in html  # the ROC caption names them


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [("A", "img0140.png", "1"), ("A", "no_such_image.png", "1")],
            r"row 2 \(line 3\): case 'no_such_image.png' is not one of",
        ),
        ([("A", "img0140.png", "maybe")], r"row 1 \(line 2\): call 'maybe' is not allowed; use 0/1, yes/no"),
        ([("A", "img0140.png", "1"), ("", "img0141.png", "0")], r"row 2 \(line 3\): the reader is empty"),
        (
            [("A", "img0140.png", "1"), ("A", "images/img0140.png", "0")],
            r"row 2 \(line 3\): reader 'A' already read case",
        ),
        ([("A", "", "1")], r"row 1 \(line 2\): the case is empty"),
    ],
)
def test_bad_rows_are_named(classify_run, tmp_path, rows, message):
    data = RunData.load(classify_run)
    with pytest.raises(DatasetFormatError, match=message):
        read_readers(write_csv(tmp_path / "r.csv", rows), usable(data.predictions["test"]), data)


def test_missing_columns_and_file(classify_run, tmp_path):
    data = RunData.load(classify_run)
    rows = usable(data.predictions["test"])
    with pytest.raises(DatasetFormatError, match=r"missing column\(s\) \['call'\]"):
        read_readers(write_csv(tmp_path / "r.csv", [("A", "x")], columns=("reader", "case")), rows, data)
    with pytest.raises(DatasetFormatError, match="readers file not found"):
        read_readers(tmp_path / "absent.csv", rows, data)


def test_wilson_interval():
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert all(np.isnan(wilson(0, 0)))
