"""``osteon report FOLDER`` on an ``osteon pipeline evaluate`` folder: end-to-end metrics with CIs, the stage
attribution of the errors, and the model card naming every stage (a gate → classifier pipeline of tiny runs)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.errors import RunDirError
from osteon.report.pipeline_report import is_pipeline_folder, write_pipeline_report

pytestmark = pytest.mark.filterwarnings("ignore")
runner = CliRunner()


def _table(page: str, caption: str) -> str:
    start = page.find(f"<caption>{caption}")
    assert start >= 0, f"no table {caption!r}"
    body = page[start : page.find("</table>", start)]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.data.phantom import make_phantom_dataset
    from osteon.engine import train

    folder = tmp_path_factory.mktemp("pipeline-report")
    make_phantom_dataset(folder / "data", images=32, size=64, seed=1)
    data = str(folder / "data" / "manifest.csv")
    common = {"model": "tiny_cnn", "epochs": 1, "image_size": 32, "batch_size": 8, "progress": False}
    train(task="classify", data=data, target="sex", out=str(folder / "runs" / "gate"), **common)
    train(task="classify", data=data, target="label", out=str(folder / "runs" / "cls"), **common)
    spec = {
        "name": "phantom-two-stage",
        "version": "0.1",
        "runs": {"gate": "runs/gate", "cls": "runs/cls"},
        "stages": [
            {"name": "quality", "run": "gate", "gate": {"class": "F", "min_probability": 0.3}},
            {"name": "classify", "run": "cls"},
        ],
        "findings": [{"name": "fracture", "stage": "classify", "class": "fractured", "truth": "label",
                      "positive": "fractured"}],
    }  # fmt: skip
    (folder / "cascade.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    out = folder / "eval"
    args = ["pipeline", "evaluate", str(folder / "cascade.yaml"), data, "--out", str(out), "--n-resamples", "30"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_osteon_report_renders_a_pipeline_evaluation(evaluated: Path) -> None:
    assert is_pipeline_folder(evaluated)
    result = runner.invoke(app, ["report", str(evaluated)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("report.html")
    page = (evaluated / "report.html").read_text()
    summary = _table(page, "End-to-end performance")
    for level, n in (("image", 32), ("study", 16)):
        assert re.search(rf"fracture {level} {n} \d+ [\d.]+ \([\d.]+–[\d.]+\)", summary), summary
    attribution = _table(page, "Stage attribution of the errors")
    assert re.search(r"fracture (classify|quality) (misclassified|rejected by gate) \d+", attribution)
    stages = _table(page, "Stages (in running order)")
    assert "1 quality" in stages and "2 classify" in stages and "P(F) ≥ 0.3" in stages
    assert "classify — sex" in stages and "classify — label" in stages  # each stage's task, from its run
    assert "fracture: ROC — image level" in page and "# Pipeline phantom-two-stage" in page  # figure, model_card.md


def test_a_folder_that_is_no_pipeline_evaluation_is_named(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(RunDirError, match=r"missing pipeline\.yaml"):
        write_pipeline_report(tmp_path)
