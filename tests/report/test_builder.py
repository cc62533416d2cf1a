"""write_report on synthetic runs: one self-contained HTML file with every section, and a model card."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from osteon.errors import ConfigError, RunDirError
from osteon.report import write_report

from .conftest import make_dataset, make_run

SECTIONS = ("dataset", "flow-diagram", "method", "results", "failure-analysis", "gallery", "claim", "model-card")


class Attributes(HTMLParser):
    """Every (tag, attribute, value) of a document, and the ids."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, k, v or "") for k, v in attrs]


def parse(html: str) -> Attributes:
    parser = Attributes()
    parser.feed(html)
    return parser


def assert_self_contained(html: str) -> int:
    """No external URL in any attribute, a strict CSP, and every image an embedded PNG that decodes."""
    attrs = parse(html).attributes
    csp = [v for t, k, v in attrs if t == "meta" and k == "content" and "default-src" in v]
    assert csp and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]
    external = [
        (t, k, v)
        for t, k, v in attrs
        if re.match(r"\s*(https?:)?//", v) and k in ("src", "href", "xmlns", "action", "srcset")
    ]
    assert not external, external
    assert "url(http" not in html and "@import" not in html and "<script" not in html and "<link" not in html
    images = [v for t, k, v in attrs if t == "img" and k == "src"]
    for uri in images:
        assert uri.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
            image.verify()
    return len(images)


def test_classify_report_has_every_section_and_is_self_contained(classify_run):
    path = write_report(classify_run, gallery_size=2)
    assert path == classify_run / "report.html"
    html = path.read_text()
    ids = {v for _, k, v in parse(html).attributes if k == "id"}
    assert set(SECTIONS) <= ids
    assert assert_self_contained(html) >= 4  # learning curves, ROC, calibration, confusion
    assert "2×2 table at the operating point" in html and "Operating point" in html
    assert "AUC" in html and "ROC curve with 95% bootstrap band" in html
    assert "CLAIM 2024 checklist" in html and "To be completed by the authors." in html
    # the flow diagram states the numbers of the run
    assert "Dataset: 160 images" in html and "test: 80" in html and "train: 60" in html


def test_model_card_is_written_next_to_the_report(classify_run):
    write_report(classify_run, gallery_size=0)
    card = (classify_run / "model_card.md").read_text()
    for heading in ("## Model details", "## Intended use", "## Data", "## Metrics", "## Limitations and risks"):
        assert heading in card
    assert "tiny_cnn" in card and "AUC:" in card and "No external test set" in card


@pytest.mark.parametrize("task", ["grade", "regress"])
def test_other_tasks_render_their_own_metrics(tmp_path, task):
    run = make_run(make_dataset(tmp_path / "data", task=task), tmp_path / "run", task=task)
    html = write_report(run, gallery_size=1).read_text()
    assert_self_contained(html)
    if task == "grade":
        assert "quadratic weighted kappa" in html and "Metrics — at least" in html and "Confusion matrix" in html
    else:
        assert "Bland–Altman" in html and "MAE" in html


def test_external_evaluations_are_reported_and_checked(tmp_path):
    run = make_run(make_dataset(tmp_path / "data"), tmp_path / "run", external=True)
    html = write_report(run, gallery_size=0).read_text()
    assert 'id="results-other-test"' in html and "external test" in html
    with pytest.raises(ConfigError, match=r"no evaluation \['nope'\].*'other-test'"):
        write_report(run, external=["nope"], gallery_size=0)


def test_unevaluated_run_is_refused(tmp_path):
    run = make_run(make_dataset(tmp_path / "data"), tmp_path / "run")
    (run / "metrics.json").unlink()
    with pytest.raises(RunDirError, match=r"never evaluated.*osteon evaluate"):
        write_report(run)


def test_report_escapes_what_it_prints(tmp_path):
    data = make_dataset(tmp_path / "data")
    text = data.read_text().replace("hand", "<b>hand</b>")
    data.write_text(text)
    run = make_run(data, tmp_path / "run")
    html = write_report(run, gallery_size=0).read_text()
    assert "&lt;b&gt;hand&lt;/b&gt;" in html and "<b>hand</b>" not in html


def test_out_option_writes_elsewhere(classify_run, tmp_path):
    target = write_report(classify_run, out=tmp_path / "elsewhere" / "r.html", gallery_size=0)
    assert target.is_file() and not (classify_run / "report.html").exists()
    assert Path(classify_run / "model_card.md").is_file()


@pytest.mark.parametrize("task", ["segment", "detect"])
def test_segmentation_and_detection_runs_render_generically(tmp_path, task):
    run = make_run(make_dataset(tmp_path / "data", task=task), tmp_path / "run", task=task)
    html = write_report(run, gallery_size=1, n_resamples=100).read_text()
    assert_self_contained(html)
    assert "Possible shortcut" not in html  # masks and boxes are not categories to associate
    if task == "segment":
        assert "<td>dice</td>" in html and "Lowest Dice" in html and "mean Dice (95% CI)" in html
    else:
        assert "False alarms" in html and "Missed findings" in html and "image-level AUC of the top box score" in html
        assert re.search(r"<td>(mAP|map)[^<]*</td>", html, re.I)
