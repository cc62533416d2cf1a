"""The web page end to end in headless Debian Chromium (Playwright with ``executable_path``): upload an image
through the page's file input and check what it draws (probabilities, heat-map, boxes) and what it loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the `serve` extra: pip install 'osteon[serve]'")
pytest.importorskip("uvicorn", reason="needs the `serve` extra: pip install 'osteon[serve]'")
playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (make test installs it)")

from osteon.serve import create_app  # noqa: E402
from osteon.serve.service import ModelService  # noqa: E402

from ..report.browser import chromium  # noqa: E402
from ._helpers import LiveServer, StubService, box_prediction, mask_prediction  # noqa: E402

pytestmark = pytest.mark.slow


def open_page(url: str) -> tuple[object, object, object, list[str]]:
    runtime = playwright.sync_playwright().start()
    browser = runtime.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return runtime, browser, page, requests + errors


def canvas_pixel(page: object, x: int, y: int) -> list[int]:
    return page.evaluate(  # type: ignore[attr-defined]
        "([x, y]) => Array.from(document.getElementById('view').getContext('2d').getImageData(x, y, 1, 1).data)",
        [x, y],
    )


def test_page_shows_a_classification_with_its_heat_map(
    trained_classifier: Path, phantom_image: Path, tmp_path: Path
) -> None:
    with LiveServer(create_app(ModelService(trained_classifier))) as server:
        runtime, browser, page, log = open_page(server.url + "/")
        try:
            page.wait_for_selector("#card table")
            assert "classify" in page.inner_text("#card")
            page.check("#want-cam")
            page.set_input_files("#file", str(phantom_image))
            page.wait_for_selector("#result[data-state=done]", timeout=60_000)
            result = page.inner_text("#result")
            assert page.get_attribute("#result", "data-kind") == "class"
            assert "0" in result and "1" in result and "heat-map of" in result
            assert "cam" in page.get_attribute("#view", "data-overlay")
            with_cam = canvas_pixel(page, 32, 32)
            page.uncheck("#show-cam")
            assert page.get_attribute("#view", "data-overlay") == ""
            without = canvas_pixel(page, 32, 32)
            assert without[0] == without[1] == without[2]  # grey image alone
            assert with_cam != without  # the heat-map was drawn over it
            page.screenshot(path=str(tmp_path / "classify.png"))
        finally:
            browser.close()
            runtime.stop()
    outside = [u for u in log if not u.startswith(server.url) and not u.startswith("data:")]
    assert not outside, f"the page loaded something from elsewhere: {outside}"


def test_page_draws_boxes_where_the_api_puts_them(phantom_image: Path) -> None:
    with LiveServer(create_app(StubService(box_prediction()))) as server:
        runtime, browser, page, _ = open_page(server.url + "/")
        try:
            page.set_input_files("#file", str(phantom_image))
            page.wait_for_selector("#result[data-state=done]", timeout=60_000)
            assert page.get_attribute("#view", "data-overlay") == "boxes:1"
            assert "1 box(es)" in page.inner_text("#result")
            # box xyxy (8, 10, 40, 50) on a 64-px image shown 1:1: its left edge is orange, its inside grey
            edge, inside = canvas_pixel(page, 8, 30), canvas_pixel(page, 24, 30)
            assert edge[0] > 200 and 100 < edge[1] < 180 and edge[2] < 60, edge
            assert inside[0] == inside[1] == inside[2]
            page.uncheck("#show-overlay")
            assert canvas_pixel(page, 8, 30)[0] == canvas_pixel(page, 8, 30)[2]
        finally:
            browser.close()
            runtime.stop()


def test_page_draws_the_mask_in_its_class_colour(phantom_image: Path) -> None:
    with LiveServer(create_app(StubService(mask_prediction()))) as server:
        runtime, browser, page, _ = open_page(server.url + "/")
        try:
            page.set_input_files("#file", str(phantom_image))
            page.wait_for_selector("#result[data-state=done]", timeout=60_000)
            assert page.get_attribute("#view", "data-overlay") == "mask" and "bone" in page.inner_text("#result")
            inside, outside = canvas_pixel(page, 20, 25), canvas_pixel(page, 20, 50)  # mask rows 20-29, cols 5-44
            assert inside[0] > inside[1] + 40 and inside[0] > inside[2] + 40, inside  # tinted red (class 1)
            assert outside[0] == outside[1] == outside[2]
        finally:
            browser.close()
            runtime.stop()


def test_window_level_changes_the_display(trained_classifier: Path, phantom_image: Path, tmp_path: Path) -> None:
    """A 12-bit DICOM: narrowing the window raises contrast (drawn client-side, no request)."""
    from PIL import Image as PILImage

    from ._helpers import dicom_bytes

    array = np.asarray(PILImage.open(phantom_image).convert("L")).astype(np.uint16) * 16
    dicom = tmp_path / "upload_me"
    dicom.write_bytes(dicom_bytes(array, window=(2048, 4096)))
    with LiveServer(create_app(ModelService(trained_classifier))) as server:
        runtime, browser, page, _ = open_page(server.url + "/")
        try:
            page.set_input_files("#file", str(dicom))
            page.wait_for_selector("#result[data-state=done]", timeout=60_000)
            assert "DICOM" in page.inner_text("#result")
            values = [canvas_pixel(page, x, 32)[0] for x in range(0, 64, 4)]
            page.eval_on_selector("#wl-width", "(el) => { el.value = 400; el.dispatchEvent(new Event('input')); }")
            narrow = [canvas_pixel(page, x, 32)[0] for x in range(0, 64, 4)]
            assert np.ptp(narrow) >= np.ptp(values) and narrow != values
        finally:
            browser.close()
            runtime.stop()


def test_page_lists_a_pipelines_findings_and_draws_them(phantom_pipeline: Path, phantom_image: Path) -> None:
    """``osteon serve PIPELINE.yaml``: the card names each stage and run, the result lists each finding."""
    from osteon.serve.pipeline_service import PipelineService

    with LiveServer(create_app(PipelineService(phantom_pipeline))) as server:
        runtime, browser, page, log = open_page(server.url + "/")
        try:
            page.wait_for_selector("#card table")
            card = page.inner_text("#card")
            assert "Pipeline" in card and "bone ← " not in card and "crops ← bone" in card and "seg" in card
            page.set_input_files("#file", str(phantom_image))
            page.wait_for_selector("#result[data-state=done]", timeout=60_000)
            assert page.get_attribute("#result", "data-kind") == "pipeline"
            rows = page.locator("#result tr.finding").all_inner_texts()
            assert [r.split()[0] for r in rows] == ["fracture", "bone", "crop_fracture"]
            drawn = page.get_attribute("#view", "data-overlay")
            assert "mask" in drawn and "boxes:" in drawn  # the bone mask and the judged crop regions
        finally:
            browser.close()
            runtime.stop()
    assert not [u for u in log if not u.startswith(server.url) and not u.startswith("data:")]
