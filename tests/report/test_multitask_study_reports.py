"""Reports of multi-task and study runs: one results table per target with CIs (multitask), the unit of analysis
stated in the results (multiview: studies; bilateral: sides of patients), CLAIM items read from the adapter."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from osteon.data.phantom import make_phantom_dataset
from osteon.report import write_report
from osteon.report.figures import write_figures
from osteon.report.kinds import adapter_for

pytestmark = pytest.mark.filterwarnings("ignore")


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _table(page: str, caption: str) -> str:
    start = page.find(f"<caption>{caption}")
    assert start >= 0, f"no table {caption!r}"
    return _text(page[start : page.find("</table>", start)])


def _claim(page: str, item: int) -> str:
    table = page[page.find("<caption>CLAIM") :]
    match = re.search(rf"<td>{item}</td>(.*?)</tr>", table, re.S)
    assert match, f"no CLAIM item {item}"
    return _text(match.group(1))


@pytest.fixture(scope="module")
def multitask_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from osteon.engine import evaluate, train

    out = tmp_path_factory.mktemp("mt-report")
    make_phantom_dataset(out / "data", images=40, size=64, seed=4)
    run = train(
        task="multitask", data=str(out / "data" / "manifest.csv"), target="fractured,kl_grade:0.5,target",
        model="tiny_cnn", epochs=1, image_size=32, batch_size=8, out=str(out / "run"), progress=False,
    )  # fmt: skip
    write_figures(run.path, evaluate(run.path, split="test", n_resamples=20, progress=False))  # as `osteon evaluate`
    page = write_report(run.path, gallery_size=0, n_resamples=20, progress=False).read_text()
    return run.path, page


def test_multitask_report_has_one_results_table_per_target_with_cis(multitask_report: tuple[Path, str]) -> None:
    _, page = multitask_report
    summary = _table(page, "Results per target — test")
    for target, metric in (("fractured", "AUC"), ("kl_grade", "quadratic weighted kappa"), ("target", "MAE")):
        assert re.search(rf"{target} \w+ [\d.]+ \d+ {metric} -?[\d.]+ \(", summary), (target, summary)
    fractured = _table(page, "Target fractured (classify) — test")
    assert re.search(r"AUC \(headline\) [\d.]+ \([\d.]+–[\d.]+\)", fractured) and "sensitivity" in fractured
    assert "positives" in fractured and "threshold (chosen on validation)" in fractured
    assert "quadratic weighted kappa (headline)" in _table(page, "Target kl_grade (grade) — test")
    assert re.search(r"MAE \(headline\) [\d.]+ \(", _table(page, "Target target (regress) — test"))
    captions = re.findall(r"<figcaption>([^<]*)", page)
    assert {"fractured: ROC curve with 95% bootstrap band", "kl_grade: confusion matrix (rows: reference)"} <= set(
        captions
    ) and "target: Bland–Altman plot" in [html.unescape(c) for c in captions]
    card = _table(page, "Images per split and reference, per target")
    assert "fractured = 1" in card and "kl_grade = 2" in card and "target: mean ± sd" in card
    subgroups = _table(page, "Subgroups — test")
    assert "fractured: AUC (95% CI)" in subgroups and "target: MAE (95% CI)" in subgroups


def test_multitask_claim_items_and_figures_come_from_the_adapter(multitask_report: tuple[Path, str]) -> None:
    run, page = multitask_report
    assert adapter_for("multitask").monitor_name == "mean score"
    assert "fractured AUC" in _claim(page, 28) and "target MAE" in _claim(page, 28)
    internal = _claim(page, 32)
    assert "test fractured AUC" in internal and "test kl_grade quadratic weighted kappa" in internal
    assert "one head per target: fractured (classify, 2 outputs)" in _claim(page, 22)
    assert "ROC curve" in _claim(page, 38)
    assert {"test_fractured_roc.png", "test_target_bland_altman.png"} <= {p.name for p in (run / "figures").glob("*")}


def _knees_and_studies(out: Path) -> tuple[Path, Path]:
    from tests.tasks.test_study import two_view_studies

    make_phantom_dataset(out / "knees", images=41, size=64, seed=2, task="kl_grade")
    return out / "knees" / "manifest.csv", two_view_studies(out / "studies", 24)


def test_study_reports_state_the_unit_of_analysis(tmp_path: Path) -> None:
    from osteon.engine import evaluate, train

    knees, studies = _knees_and_studies(tmp_path)
    common = {"model": "tiny_cnn", "epochs": 1, "image_size": 32, "batch_size": 4, "progress": False}
    views = train(task="multiview", data=str(studies), out=str(tmp_path / "mv"), **common)
    sides = train(task="bilateral", data=str(knees), out=str(tmp_path / "bl"), **common)
    for run in (views, sides):
        evaluate(run.path, split="test", n_resamples=20, progress=False)

    page = write_report(views.path, gallery_size=0, n_resamples=20, progress=False).read_text()
    unit = _table(page, "Unit of analysis")
    assert "unit of analysis studies" in unit and "views (slots) AP, LAT" in unit and "CIs resampled by patient" in unit
    assert re.search(r"studies evaluated \d+", _table(page, "Evaluated set"))
    assert re.search(r"AUC \(headline\) [\d.]+ \(", _table(page, "classify metrics per study — test"))
    assert "test studies" in _claim(page, 21)

    page = write_report(sides.path, gallery_size=0, n_resamples=20, progress=False).read_text()
    unit = _table(page, "Unit of analysis")
    assert "unit of analysis sides" in unit and re.search(r"patients with both sides \d+", unit)
    assert re.search(r"sides evaluated \d+", _table(page, "Evaluated set"))
    assert "quadratic weighted kappa (headline)" in _table(page, "grade metrics per side — test")
    assert "5 outputs per side" in _claim(page, 22)
