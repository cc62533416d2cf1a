"""The report opens in a real browser (headless Chromium), shows its sections and figures, and stays offline."""

from __future__ import annotations

import numpy as np
from PIL import Image

from osteon.report import write_report

from .browser import chromium, render

SECTIONS = ("dataset", "flow-diagram", "method", "results", "failure-analysis", "gallery", "sanity-check", "claim")


def test_the_detector_sees_page_requests(tmp_path):
    """Control: a page that loads remote resources is caught, so an empty list below means something."""
    chromium()
    page = tmp_path / "leaky.html"
    page.write_text(
        '<!DOCTYPE html><img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="https://example.invalid/a.css">'
    )
    rendered = render(page, tmp_path, height=300)
    assert any("127.0.0.1:9/x.png" in u for u in rendered.page_requests)
    assert any("example.invalid" in u for u in rendered.page_requests)


def test_report_of_a_trained_model_renders_offline(evaluated_classifier, tmp_path):
    chromium()
    path = write_report(evaluated_classifier, gallery_size=1, n_resamples=100)
    rendered = render(path, tmp_path)
    assert rendered.page_requests == []
    for section in SECTIONS:
        assert f'id="{section}"' in rendered.dom
    assert rendered.dom.count("<img") >= 7  # learning curves, ROC, calibration, confusion, sanity strip, CAMs
    for group in ("True positives", "False positives", "False negatives", "True negatives"):
        assert f"<h4>{group}" in rendered.dom
    cases = rendered.dom.count('class="case"')
    assert 2 <= cases <= 4 and rendered.dom.count('class="case"><img') == cases  # every case shows its CAM
    assert "<svg" in rendered.dom and "Dataset: 96 images" in rendered.dom
    with Image.open(rendered.screenshot) as shot:
        pixels = np.asarray(shot.convert("RGB"))
    assert pixels.shape[0] >= 1000
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # text, tables and figures, not a blank page
