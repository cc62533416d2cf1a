"""``osteon export --format onnx``: parity with PyTorch, int8 kept only when validation holds, every task that
exports, the ONNX backend of the Predictor, the default detector (network in ONNX, decoding in PyTorch), and other
detectors refused with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("onnx", reason="needs the `onnx` extra: pip install 'osteon[onnx]'")
pytest.importorskip("onnxruntime", reason="needs the `onnx` extra: pip install 'osteon[onnx]'")

from osteon.engine import Predictor, RunDir, train
from osteon.engine.export_onnx import export_onnx
from osteon.errors import ConfigError

#: Stated parity tolerance of the predictions (probabilities, values) between ONNX Runtime and PyTorch.
PREDICTION_ATOL = 1e-4


@pytest.fixture(scope="module")
def exported(trained_classifier: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared phantom classifier with its fp32 ONNX export."""
    run = tmp_path_factory.mktemp("onnx") / "classify"
    shutil.copytree(trained_classifier, run)
    export_onnx(run)
    return run


def test_export_writes_the_graph_and_what_a_runtime_needs(exported: Path) -> None:
    import onnx

    run = RunDir(exported)
    info = json.loads(run.onnx_info.read_text())
    assert run.onnx_model.is_file() and not run.onnx_int8_model.exists()
    assert info["preprocessing"]["image_size"] == 48 and {"mean", "std", "letterbox"} <= set(info["preprocessing"])
    assert info["task"]["name"] == "classify" and info["task"]["class_names"] == ["0", "1"]
    assert info["inputs"]["image"]["shape"] == ["batch", 1, 48, 48] and info["outputs"]["logits"]["shape"] == [2]
    assert info["parity"]["passed"] and info["parity"]["max_abs_diff"] <= 1e-3
    assert (
        info["validation"]["metric"] == "AUC" and abs(info["validation"]["onnx"] - info["validation"]["torch"]) < 1e-3
    )
    embedded = {p.key: p.value for p in onnx.load(str(run.onnx_model)).metadata_props}
    assert json.loads(embedded["osteon"])["preprocessing"] == info["preprocessing"]


def test_onnx_predictor_matches_torch(exported: Path, phantom_dataset: Path) -> None:
    images = sorted((phantom_dataset.parent / "images").glob("*.png"))[:20]
    torch_table = Predictor.from_run(exported).predict_paths(images, progress=False)
    onnx_predictor = Predictor.from_run(exported, backend="onnx")
    assert onnx_predictor.backend == "onnx" and type(onnx_predictor.model).__name__ == "OnnxModel"
    onnx_table = onnx_predictor.predict_paths(images, progress=False)
    for column in ("prob_0", "prob_1"):
        np.testing.assert_allclose(onnx_table[column], torch_table[column], atol=PREDICTION_ATOL)
    assert (onnx_table["prediction"] == torch_table["prediction"]).all()
    one = onnx_predictor.predict_image(images[0])
    np.testing.assert_allclose(one.probabilities, torch_table.loc[0, ["prob_0", "prob_1"]].to_numpy(float), atol=1e-4)


def test_int8_is_kept_only_when_the_validation_metric_holds(exported: Path, phantom_dataset: Path) -> None:
    run = RunDir(exported)
    strict = export_onnx(exported, quantize="int8", max_metric_drop=-1.0)  # any result is "too much loss"
    assert strict.int8_accepted is False and not run.onnx_int8_model.exists()
    assert strict.info["int8"]["calibration_images"] > 0 and strict.info["int8"]["metric"] == "AUC"
    lenient = export_onnx(exported, quantize="int8", max_metric_drop=1.0)
    assert lenient.int8_accepted is True and run.onnx_int8_model.is_file()
    int8 = json.loads(run.onnx_info.read_text())["int8"]
    assert int8["change"] == pytest.approx(int8["int8"] - int8["torch"])
    images = sorted((phantom_dataset.parent / "images").glob("*.png"))[:8]
    table = Predictor.from_run(exported, backend="onnx-int8").predict_paths(images, progress=False)
    assert table["prob_1"].between(0, 1).all()


def test_missing_export_and_unknown_backend_say_what_to_run(trained_classifier: Path) -> None:
    with pytest.raises(ConfigError, match="osteon export"):
        Predictor.from_run(trained_classifier, backend="onnx")
    with pytest.raises(ConfigError, match="not one of"):
        Predictor.from_run(trained_classifier, backend="tensorrt")
    with pytest.raises(ConfigError, match="--quantize"):
        export_onnx(trained_classifier, quantize="int4")


FAST = {"model": "tiny_cnn", "image_size": 48, "batch_size": 16, "lr": 3e-3, "epochs": 1, "progress": False}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "options"),
    [
        ("grade", {"target": "kl_grade"}),
        ("regress", {"target": "target"}),
        ("segment", {"model": "tiny_unet", "image_size": 64}),
        ("classify", {"target": "fractured", "covariates": ["age", "sex"]}),
    ],
)
def test_every_image_task_exports_with_parity(task: str, options: dict, phantom_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / task
    train(task=task, data=str(phantom_dataset), out=str(out), **{**FAST, **options})
    report = export_onnx(out)
    assert report.info["parity"]["passed"], report.info["parity"]
    images = sorted((phantom_dataset.parent / "images").glob("*.png"))[:3]
    torch_pred = Predictor.from_run(out)
    onnx_pred = Predictor.from_run(out, backend="onnx")
    for path in images:
        a, b = torch_pred.predict_image(path), onnx_pred.predict_image(path)
        for name in ("probabilities", "value", "mask"):
            if hasattr(a, name):
                np.testing.assert_allclose(np.asarray(getattr(b, name)), np.asarray(getattr(a, name)), atol=1e-3)


def test_models_that_return_box_lists_are_refused(trained_classifier: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Detectors return per-image lists after NMS: the export names why it stops (no detector trained here)."""
    import torch

    run = trained_classifier
    original = Predictor.from_run.__func__  # type: ignore[attr-defined]

    class BoxModel(torch.nn.Module):
        def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
            return [{"boxes": torch.zeros(0, 4)} for _ in x]

    def fake(cls: type, path: Path, **kwargs: object) -> Predictor:
        predictor = original(cls, path, **kwargs)
        predictor.model = BoxModel()
        return predictor

    monkeypatch.setattr(Predictor, "from_run", classmethod(fake))
    with pytest.raises(ConfigError, match="not one tensor"):
        export_onnx(run)
    assert not RunDir(run).onnx_model.exists()


def test_a_run_with_unsplit_rows_exports(trained_classifier: Path, tmp_path: Path) -> None:
    """Rows a split file left out have no split (NA) in the run's manifest; the export skips them."""
    run = tmp_path / "classify"
    shutil.copytree(trained_classifier, run)
    manifest = pd.read_csv(run / "manifest.csv")
    manifest.loc[manifest.index[:5], "split"] = None
    manifest.to_csv(run / "manifest.csv", index=False)
    assert export_onnx(run).info["validation"]["n"] > 0


@pytest.mark.filterwarnings("ignore")
def test_the_default_detector_exports_its_network_and_decodes_alike(phantom_dataset: Path, tmp_path: Path) -> None:
    """centernet: ONNX Runtime runs the network, PyTorch the top-cell search and NMS; boxes equal PyTorch's."""
    run = train(
        task="detect", data=str(phantom_dataset), image_size=64, epochs=2, batch_size=8, out=str(tmp_path / "det"),
        score_threshold=0.01, progress=False,
    )  # fmt: skip
    plan = json.loads((run.path / "plan.json").read_text())
    assert plan["quality_head"] is True and plan["flip_test"] is True  # the default's box quality and flip test
    report = export_onnx(run.path)
    assert report.info["validation"]["onnx"] == pytest.approx(report.info["validation"]["torch"], abs=1e-6)
    assert "decode" in report.info["postprocessing"]
    manifest = RunDir(run.path).load_manifest()
    images = [manifest.resolve(p) for p in manifest.frame.loc[manifest.frame["split"] == "test", "image"][:6]]
    predictor = Predictor.from_run(run.path)  # trained channels-last (the recipe's default), and predicts so
    kernel = next(p for p in predictor.model.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert kernel.is_contiguous(memory_format=torch.channels_last)
    torch_boxes = predictor.predict_paths(images, progress=False)
    onnx_boxes = Predictor.from_run(run.path, backend="onnx").predict_paths(images, progress=False)
    assert (onnx_boxes["n_boxes"] == torch_boxes["n_boxes"]).all() and torch_boxes["n_boxes"].sum() > 0
    for a, b in zip(torch_boxes["pred_boxes"], onnx_boxes["pred_boxes"], strict=True):
        xa = np.array([box["xyxy"] for box in json.loads(a)]).reshape(-1, 4)
        xb = np.array([box["xyxy"] for box in json.loads(b)]).reshape(-1, 4)
        np.testing.assert_allclose(xb, xa, atol=0.05)


def test_cli_export_and_predict_with_onnx(exported: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app

    runner = CliRunner()
    rejected = runner.invoke(app, ["export", str(exported), "--quantize", "int8", "--max-metric-drop", "-1"])
    assert rejected.exit_code == 1 and "REJECTED" in rejected.output and "only fp32 was kept" in rejected.output
    done = runner.invoke(app, ["export", str(exported), "--format", "onnx"])
    assert done.exit_code == 0 and "parity: max |onnx - torch|" in done.output
    assert runner.invoke(app, ["export", str(exported), "--format", "tflite"]).exit_code == 2
    out = tmp_path / "p.csv"
    images = sorted((phantom_dataset.parent / "images").glob("*.png"))[:5]
    result = runner.invoke(app, ["predict", str(exported), *map(str, images), "--out", str(out), "--backend", "onnx"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 5
