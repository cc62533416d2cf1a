"""``osteon serve PIPELINE.yaml``: the REST API answers a pipeline's findings (schema osteon.pipeline.result/1)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

pytest.importorskip("fastapi", reason="needs the `serve` extra: pip install 'osteon[serve]'")
pytest.importorskip("multipart", reason="needs the `serve` extra: pip install 'osteon[serve]'")

from fastapi.testclient import TestClient

from osteon.data.manifest import Manifest
from osteon.pipelines.runner import Pipeline
from osteon.serve import create_app
from osteon.serve.pipeline_service import PipelineService, is_pipeline_file

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def client(phantom_pipeline: Path) -> TestClient:
    return TestClient(create_app(PipelineService(phantom_pipeline)), raise_server_exceptions=False)


def test_pipeline_file_is_told_by_content(phantom_pipeline: Path, trained_classifier: Path, tmp_path: Path) -> None:
    assert is_pipeline_file(phantom_pipeline) and not is_pipeline_file(trained_classifier)
    disguised = tmp_path / "pipeline.txt"  # any suffix: the content decides
    disguised.write_text(phantom_pipeline.read_text())
    assert is_pipeline_file(disguised)
    other = tmp_path / "config.yaml"
    other.write_text("task: classify\nmodel: tiny_cnn\n")
    assert not is_pipeline_file(other)


def test_card_names_every_stage_with_its_run_and_version(client: TestClient, phantom_pipeline: Path) -> None:
    card = client.get("/v1/model").json()
    pipeline = Pipeline.from_file(phantom_pipeline)
    assert card["kind"] == "pipeline" and card["name"] == "phantom-serve"
    assert [(s["name"], s["run"], s["version"]) for s in card["stages"]] == [
        ("whole", "cls", pipeline.runs["cls"].version),
        ("bone", "seg", pipeline.runs["seg"].version),
        ("crops", "cls", pipeline.runs["cls"].version),
    ]
    assert [f["name"] for f in card["findings"]] == ["fracture", "bone", "crop_fracture"]


def test_predict_returns_the_pipeline_result(client: TestClient, phantom_pipeline: Path, phantom_image: Path) -> None:
    response = client.post("/v1/predict", files={"file": ("x.png", phantom_image.read_bytes(), "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"] == "png" and "prediction" not in body and "display" in body
    document = body["pipeline"]
    assert document["schema"] == "osteon.pipeline.result/1" and len(document["images"]) == 1
    findings = {f["name"]: f for f in document["images"][0]["findings"]}
    assert set(findings) == {"fracture", "bone", "crop_fracture"}
    pipeline = Pipeline.from_file(phantom_pipeline)
    for finding in findings.values():  # run and version per finding
        assert finding["run_version"] == pipeline.runs[finding["run"]].version
    # the same numbers as running the pipeline on the file directly
    manifest = Manifest(
        __import__("pandas").DataFrame({"image": [str(phantom_image)], "study_id": "s"}), "/", name="direct"
    )
    expected = {f["name"]: f for f in pipeline.run(manifest).to_json()["images"][0]["findings"]}
    for name, finding in findings.items():
        assert finding["probability"] == pytest.approx(expected[name]["probability"], abs=1e-5), name
    bone = findings["bone"]  # a mask finding: its PNG inline, its boxes in original pixels
    if bone["mask"] is not None:
        mask = np.asarray(PILImage.open(io.BytesIO(base64.b64decode(bone["mask"]["png"]))))
        assert mask.shape == (body["height"], body["width"])
    for box in bone["boxes"]:
        x1, y1, x2, y2 = box["xyxy"]
        assert 0 <= x1 <= x2 <= body["width"] and 0 <= y1 <= y2 <= body["height"]
    assert "fracture" in body["summary"]


def test_bad_uploads_and_cam_on_a_pipeline(client: TestClient, phantom_image: Path) -> None:
    text = client.post("/v1/predict", files={"file": ("a.png", b"not an image at all" * 5, "image/png")})
    assert text.status_code == 415
    cam = client.post(
        "/v1/predict", params={"cam": True}, files={"file": ("x.png", phantom_image.read_bytes(), "image/png")}
    )
    assert cam.status_code == 200 and "not pipelines" in cam.json()["cam"]["error"]


def test_cli_serves_a_pipeline_file(phantom_pipeline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from osteon.cli.main import app

    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kwargs: served.append(application))
    result = CliRunner().invoke(app, ["serve", str(phantom_pipeline), "--port", "8999"])
    assert result.exit_code == 0, result.output
    card = TestClient(served[0]).get("/v1/model").json()
    assert card["kind"] == "pipeline" and [s["name"] for s in card["stages"]] == ["whole", "bone", "crops"]
    onnx = CliRunner().invoke(app, ["serve", str(phantom_pipeline), "--backend", "onnx"])
    assert onnx.exit_code != 0 and "drop --backend" in onnx.output
