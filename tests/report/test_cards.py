"""The model card (Markdown that is safe to render, without absolute paths), the predictions reader and the
progress display of ``osteon report``."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from rich.console import Console

from osteon.engine.rundir import RunDir
from osteon.errors import RunDirError
from osteon.report import RunData, write_report
from osteon.report.model_card import markdown_text, relative_paths


def test_model_card_escapes_class_names_and_holds_no_absolute_path(classify_run, tmp_path):
    """Defect 7: class names went into the Markdown raw, and the card named the author's folders."""
    run = RunDir(classify_run)
    state = run.read_json(run.state)
    state["task"]["class_names"] = ['<img src=x onerror="alert(1)">', "1"]
    state["task"]["target"] = "label_*x*"
    run.write_json(run.state, state)
    write_report(classify_run, gallery_size=0, n_resamples=100, progress=False)
    card = run.model_card.read_text()
    assert "<img" not in card and '&lt;img src=x onerror="alert(1)"&gt;' in card
    assert "label\\_\\*x\\*" in card and "*x*" not in card.replace("\\*x\\*", "")
    assert str(tmp_path) not in card and not re.search(r"(^|[\s(])/(tmp|home|work|Users)/", card)
    assert f"run directory {classify_run.name}." in card and "(../data)" in card


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tiny_cnn", "tiny_cnn"),  # underscores inside words are not emphasis
        ("_a_ [b](c) `d` a|b ~e~", "\\_a\\_ \\[b\\](c) \\`d\\` a\\|b \\~e\\~"),
        ("# not a heading", "\\# not a heading"),
        ("1. not a list", "1\\. not a list"),
        ("0.998 (0.990–1.000)", "0.998 (0.990–1.000)"),  # a number is not a list marker
        ("- x", "\\- x"),
        ("a\nb", "a b"),
        ("R&D <br>", "R&amp;D &lt;br&gt;"),
    ],
)
def test_markdown_text(text, expected):
    assert markdown_text(text) == expected


def test_relative_paths_leave_fractions_and_formulas_alone():
    text = "weights /data/w.pt; (x − 0.5) / 0.25; 1/2; train/val; /runs/a/b"
    assert relative_paths(text, "/runs/a") == "weights ../../data/w.pt; (x − 0.5) / 0.25; 1/2; train/val; b"


def test_one_reader_for_predictions(tmp_path):
    run = RunDir.create(tmp_path / "run")
    pd.DataFrame(
        {
            "image": ["/x/001.png", "/x/002.png"],
            "patient_id": ["007", "008"],
            "truth": ["0", "1"],
            "prediction": ["1", "1"],
            "prob_1": [0.25, 0.75],
            "pred_boxes": ['[{"xyxy": [1, 2, 3, 4], "label": "1", "score": 0.5}]', "[]"],
            "mask_file": ["", "/x/m.png"],
            "error": ["", "unreadable"],
        }
    ).to_csv(run.predictions("test"), index=False)
    frame = run.read_predictions("test")
    assert frame["patient_id"].tolist() == ["007", "008"]  # ids keep their zeros
    assert frame["truth"].tolist() == ["0", "1"] and str(frame["truth"].dtype) == "string"
    assert str(frame["pred_boxes"].dtype) == "string" and str(frame["mask_file"].dtype) == "string"
    assert frame["prob_1"].dtype == float and frame["error"].tolist() == ["", "unreadable"]
    with pytest.raises(RunDirError, match=r"predictions_val\.csv.*osteon evaluate .* --split val"):
        run.read_predictions("val")


def test_report_data_reads_predictions_through_the_run_directory(classify_run):
    data = RunData.load(classify_run)
    frame = data.predictions["test"]
    assert str(frame["truth"].dtype) == "string" and str(frame["patient_id"].dtype) == "string"
    assert frame["case"].str.startswith("/").all()


def test_report_steps_are_shown_on_stderr(classify_run, monkeypatch):
    from osteon.report import progress

    buffer = io.StringIO()
    monkeypatch.setattr(progress, "make_console", lambda: Console(file=buffer, force_terminal=True, width=120))
    write_report(classify_run, gallery_size=0, n_resamples=100, progress=True)
    shown = buffer.getvalue()
    for step in ("reading the run directory", "dataset card", "results of test", "subgroups", "CLAIM checklist"):
        assert step in shown
    buffer.truncate(0)
    write_report(classify_run, gallery_size=0, n_resamples=100, progress=False)
    assert buffer.getvalue().strip("\x00") == ""
