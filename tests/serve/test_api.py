"""The REST API with FastAPI's TestClient: predictions of every kind, CAM, limits, token, JSON errors, logs."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

pytest.importorskip("fastapi", reason="needs the `serve` extra: pip install 'osteon[serve]'")
pytest.importorskip("multipart", reason="needs the `serve` extra: pip install 'osteon[serve]'")

from fastapi.testclient import TestClient

from osteon.engine import Predictor
from osteon.serve import ServeSettings, create_app
from osteon.serve.service import ModelService

from ._helpers import (
    StubService,
    bomb_png,
    box_prediction,
    dicom_bytes,
    jpeg_bytes,
    mask_prediction,
)


@pytest.fixture(scope="module")
def service(trained_classifier: Path) -> ModelService:
    return ModelService(trained_classifier)


@pytest.fixture(scope="module")
def client(service: ModelService) -> TestClient:
    return TestClient(create_app(service), raise_server_exceptions=False)


def upload(client: TestClient, content: bytes, name: str = "image.png", **params: object) -> object:
    return client.post("/v1/predict", files={"file": (name, content, "application/octet-stream")}, params=params)


def test_health_model_card_and_schema(client: TestClient) -> None:
    assert client.get("/v1/health").json()["status"] == "ok"
    card = client.get("/v1/model").json()
    assert card["task"] == "classify" and card["classes"] == ["0", "1"] and card["positive_class"] == "1"
    assert card["preprocessing"]["image_size"] == 48 and card["version"]["osteon"]
    assert "val" in card["metrics"] or card["metrics"] == {}
    schema = client.get("/openapi.json").json()
    assert "/v1/predict" in schema["paths"] and "/v1/model" in schema["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text and "http" not in page.text.split("<body>")[1]


def test_png_prediction_matches_the_predictor(
    client: TestClient, trained_classifier: Path, phantom_image: Path
) -> None:
    response = upload(client, phantom_image.read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    expected = Predictor.from_run(trained_classifier).predict_image(phantom_image)
    probs = body["prediction"]["probabilities"]
    assert body["prediction"]["kind"] == "class" and body["format"] == "png"
    np.testing.assert_allclose([probs["0"], probs["1"]], expected.probabilities, atol=1e-5)
    assert body["prediction"]["label"] == expected.label and "threshold" in body["prediction"]["operating_point"]
    display = body["display"]
    samples = np.frombuffer(base64.b64decode(display["samples_uint16_le"]), dtype="<u2")
    assert samples.size == display["width"] * display["height"] and display["original_width"] == body["width"]


def test_content_is_sniffed_never_the_name(client: TestClient, phantom_image: Path) -> None:
    array = np.asarray(PILImage.open(phantom_image).convert("L"))
    as_jpeg = upload(client, jpeg_bytes(array), name="looks_like.dcm")
    assert as_jpeg.status_code == 200 and as_jpeg.json()["format"] == "jpeg"
    text = upload(client, b"hello, I am not an image" * 10, name="image.png")
    assert text.status_code == 415 and "DICOM, PNG or JPEG" in text.json()["error"]
    tiff = io.BytesIO()
    PILImage.fromarray(array).save(tiff, format="TIFF")
    assert upload(client, tiff.getvalue(), name="x.png").status_code == 415


def test_dicom_window_and_no_identifiers_in_logs(
    client: TestClient, phantom_image: Path, caplog: pytest.LogCaptureFixture
) -> None:
    array = np.asarray(PILImage.open(phantom_image).convert("L")).astype(np.uint16) * 16
    caplog.set_level(logging.INFO, logger="osteon.serve")
    response = upload(client, dicom_bytes(array, window=(2000, 3000)), name="Doe_Jane_PAT-SECRET-123.dcm")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"] == "dicom" and body["display"]["window"] == {"center": 2000.0, "width": 3000.0}
    assert "predict" in caplog.text and "dicom" in caplog.text
    for secret in ("PAT-SECRET-123", "Doe", "Jane"):
        assert secret not in caplog.text and secret not in response.text


def test_bad_uploads_get_json_4xx(client: TestClient, phantom_image: Path) -> None:
    array = np.asarray(PILImage.open(phantom_image).convert("L")).astype(np.uint16)
    truncated = dicom_bytes(array)[:-500]
    cases = {
        "truncated DICOM": (truncated, 422),
        "decompression bomb": (bomb_png(), 413),
        "empty": (b"", 400),
    }
    for what, (content, status) in cases.items():
        response = upload(client, content)
        assert response.status_code == status, (what, response.text)
        body = response.json()
        assert body["error"] and body["request_id"] and "Traceback" not in response.text, what
    missing = client.post("/v1/predict", data={"x": "1"})
    assert missing.status_code == 422 and "file" in missing.json()["error"]


def test_size_limit_and_no_client_chosen_names(trained_classifier: Path, phantom_image: Path, tmp_path: Path) -> None:
    stub = StubService(box_prediction())
    small = TestClient(create_app(stub, ServeSettings(max_upload_bytes=2000)), raise_server_exceptions=False)
    big = phantom_image.read_bytes() + b"\0" * 3000
    response = upload(small, big)
    assert response.status_code == 413 and "limit" in response.json()["error"]
    evil = tmp_path / "evil.png"
    roomy = TestClient(create_app(stub), raise_server_exceptions=False)
    ok = upload(roomy, phantom_image.read_bytes(), name=f"../../{evil}")
    assert ok.status_code == 200 and not evil.exists()
    assert stub.seen and stub.seen[-1].name == "upload.png" and not stub.seen[-1].exists()  # ours, and removed


def test_token_is_required_when_set(phantom_image: Path) -> None:
    client = TestClient(create_app(StubService(box_prediction()), ServeSettings(token="s3cret")))
    assert client.get("/v1/health").status_code == 200
    assert client.get("/v1/model").status_code == 401
    assert client.get("/v1/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert upload(client, phantom_image.read_bytes()).status_code == 401


def test_boxes_masks_and_cam_as_json(client: TestClient, phantom_image: Path) -> None:
    from pycocotools import mask as coco

    boxes = TestClient(create_app(StubService(box_prediction())))
    body = upload(boxes, phantom_image.read_bytes()).json()
    assert body["prediction"]["boxes"] == [{"xyxy": [8.0, 10.0, 40.0, 50.0], "score": 0.9, "label": "fracture"}]
    assert "cam" not in body and body["summary"] == "1 box(es), top score 0.90"
    with_cam = upload(boxes, phantom_image.read_bytes(), cam="true").json()
    assert "no CAM" in with_cam["cam"]["error"]
    truth = mask_prediction()
    masks = TestClient(create_app(StubService(truth)))
    pred = upload(masks, phantom_image.read_bytes()).json()["prediction"]
    decoded = np.asarray(PILImage.open(io.BytesIO(base64.b64decode(pred["png"]["class_map"]))))
    np.testing.assert_array_equal(decoded, truth.mask)
    rle = {**pred["rle"]["bone"], "counts": pred["rle"]["bone"]["counts"].encode()}
    np.testing.assert_array_equal(coco.decode(rle), truth.mask)
    assert pred["measurements"]["bone"]["area_mm2"] is None  # NaN is not JSON
    cam = upload(client, phantom_image.read_bytes(), cam="true").json()["cam"]
    heat = PILImage.open(io.BytesIO(base64.b64decode(cam["png"])))
    assert heat.mode == "RGBA" and cam["target"] in ("0", "1")


def test_unexpected_errors_are_json_without_traceback(phantom_image: Path) -> None:
    class Broken(StubService):
        def predict(self, path: Path) -> object:
            raise RuntimeError("boom at /very/secret/path")

    client = TestClient(create_app(Broken(None)), raise_server_exceptions=False)
    response = upload(client, phantom_image.read_bytes())
    assert response.status_code == 500 and response.json()["error"] == "internal error"
    assert "secret" not in response.text and "Traceback" not in response.text


def test_cli_refuses_other_hosts_without_a_token(trained_classifier: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app

    monkeypatch.delenv("OSTEON_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", str(trained_classifier), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "token" in result.output
