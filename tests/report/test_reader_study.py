"""Reader study in the report: readers with and without AI, per-reading AUC, the OR test, kappas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osteon.errors import DatasetFormatError
from osteon.metrics.mrmc import obuchowski_rockette
from osteon.report import RunData, read_readers, write_report
from osteon.report.mrmc import reader_study
from osteon.report.rundata import usable


def study_csv(path, rows: pd.DataFrame, *, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """3 readers × 2 conditions; aided readers' ratings follow the truth more closely. Returns table, truth."""
    rng = np.random.default_rng(seed)
    truth = (rows["truth"] == "1").to_numpy(int)
    records = []
    for reader in ("R1", "R2", "R3"):
        for condition, noise in (("unaided", 1.5), ("aided", 0.7)):
            latent = truth * 1.5 + rng.normal(0, noise, len(truth))
            rating = np.clip(np.round(latent + 3), 1, 5).astype(int)
            for case, r in zip(rows["case"], rating, strict=True):
                records.append(
                    {"reader": reader, "condition": condition, "case": case, "call": int(r >= 4), "score": r}
                )
    table = pd.DataFrame(records)
    table.to_csv(path, index=False)
    return table, truth


def test_reader_study_matches_the_or_analysis_and_reaches_the_report(classify_run, tmp_path):
    data = RunData.load(classify_run)
    rows = usable(data.predictions["test"])
    table, truth = study_csv(tmp_path / "readers.csv", rows)
    calls = read_readers(tmp_path / "readers.csv", rows, data)
    assert calls.conditions == ["unaided", "aided"] and "R1 (aided)" in calls.readers
    study = reader_study(data, "test", calls, rows, n_resamples=100)
    # the same ratings through the metric directly: (condition, reader, case)
    order = list(rows["case"])
    scores = np.stack(
        [
            np.stack(
                [
                    table[(table.reader == r) & (table.condition == c)].set_index("case").loc[order, "score"]
                    for r in ("R1", "R2", "R3")
                ]
            )
            for c in ("unaided", "aided")
        ]
    )
    direct = obuchowski_rockette(truth, scores, modalities=["unaided", "aided"], readers=["R1", "R2", "R3"])
    assert study["or_test"]["f"] == pytest.approx(direct.f)
    assert study["or_test"]["differences"][0]["estimate"] == pytest.approx(direct.differences[0]["estimate"])
    assert len(study["readings"]) == 6 and all(r["auc_from"] == "scores" for r in study["readings"])
    assert [i["condition"] for i in study["inter_reader"]] == ["unaided", "aided"]
    k = study["model_kappa"][0]["kappa"]
    assert k["low"] <= k["estimate"] <= k["high"]

    html = write_report(classify_run, readers=tmp_path / "readers.csv", gallery_size=0).read_text()
    for text in ("Reader AUCs", "Obuchowski–Rockette", "Difference in AUC between conditions", "Fleiss"):
        assert text in html, text
    for name in ("test_roc_readers", "test_reader_rocs"):  # the figures, for a paper too
        assert all((classify_run / "figures" / f"{name}.{ext}").is_file() for ext in ("png", "svg", "pdf")), name
    saved = json.loads((classify_run / "reader_study.json").read_text())
    assert saved["or_test"]["ddf"] == pytest.approx(direct.ddf)


def test_a_reading_twice_under_one_condition_is_refused(classify_run, tmp_path):
    data = RunData.load(classify_run)
    rows = usable(data.predictions["test"])
    case = rows["case"].iloc[0]
    path = tmp_path / "r.csv"
    pd.DataFrame(
        [("A", "aided", case, "1", "4"), ("A", "unaided", case, "0", "2"), ("A", "aided", case, "0", "1")],
        columns=["reader", "condition", "case", "call", "score"],
    ).to_csv(path, index=False)
    with pytest.raises(DatasetFormatError, match=r"row 3 .*already read case .* under condition 'aided'"):
        read_readers(path, rows, data)
    pd.DataFrame([("A", case, "1", "high")], columns=["reader", "case", "call", "score"]).to_csv(path, index=False)
    with pytest.raises(DatasetFormatError, match="score 'high' is not a number"):
        read_readers(path, rows, data)


def test_calls_alone_give_kappas_and_auc_without_conditions(classify_run, tmp_path):
    data = RunData.load(classify_run)
    rows = usable(data.predictions["test"])
    truth = (rows["truth"] == "1").to_numpy(int)
    path = tmp_path / "r.csv"
    records = [("A", c, str(t)) for c, t in zip(rows["case"], truth, strict=True)]
    records += [
        ("B", c, str(1 - t) if i % 4 == 0 else str(t)) for i, (c, t) in enumerate(zip(rows["case"], truth, strict=True))
    ]
    pd.DataFrame(records, columns=["reader", "case", "call"]).to_csv(path, index=False)
    study = reader_study(data, "test", read_readers(path, rows, data), rows, n_resamples=50)
    assert "or_test" not in study  # one condition: nothing to compare
    assert study["readings"][0]["auc"]["estimate"] == pytest.approx(1.0)  # perfect calls
    assert study["readings"][0]["auc_from"] == "calls"
    assert study["inter_reader"][0]["fleiss_kappa"]["estimate"] < 1.0
