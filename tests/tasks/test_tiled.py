"""``tiled`` (full-resolution classification from a bag of tiles) end to end on tiny synthetic radiographs: train,
evaluate, predict, explain (stitched tile Grad-CAM and attention at the original resolution), report; the memory bound
(no more than ``max_tiles`` tiles per image through the backbone), the tile cache, bad options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from osteon.errors import ConfigError


def radiograph(rng: np.random.Generator, positive: bool, shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Grey anatomy on a black border; a positive has a thin bright line (a 'fracture') somewhere inside."""
    h, w = shape
    image = np.zeros(shape, dtype=np.uint8)
    image[16 : h - 16, 24 : w - 24] = rng.integers(60, 110, size=(h - 32, w - 48))
    if positive:
        y, x = int(rng.integers(32, h - 64)), int(rng.integers(40, w - 48))
        image[y : y + 28, x : x + 2] = 255
    return image


@pytest.fixture(scope="module")
def tiled_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiled")
    rng = np.random.default_rng(0)
    parts = ["train"] * 6 + ["val", "val", "test", "test"]
    rows = []
    for i in range(40):
        Image.fromarray(radiograph(rng, bool(i % 2))).save(root / f"im{i:02d}.png")
        rows.append({"image": f"im{i:02d}.png", "label": i % 2, "patient_id": f"p{i}", "split": parts[i % 10]})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    Image.fromarray(radiograph(rng, True, (200, 300))).save(root / "wide.png")  # not square, not in the manifest
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    patch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("cache")
    patch.setenv("OSTEON_VOLUME_CACHE", str(folder))
    yield folder
    patch.undo()


def _train(data: Path, out: Path, **options: object) -> Path:
    from osteon.engine import train

    settings: dict[str, object] = {
        "task": "tiled",
        "data": str(data),
        "model": "tiny_cnn",
        "tile_size": 64,
        "max_tiles": 6,
        "image_size": 64,
        "epochs": 2,
        "batch_size": 4,
        "lr": 3e-3,
        "out": str(out),
        "progress": False,
        **options,
    }
    return train(**settings).path


@pytest.fixture(scope="module")
def tiled_run(tiled_data: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two-scale (context instance), attention pooling, tiles at native resolution."""
    return _train(tiled_data, tmp_path_factory.mktemp("runs") / "tiled", tile_context=True)


def test_tiled_run_evaluates_and_predicts_like_classify(tiled_run: Path, tiled_data: Path) -> None:
    from osteon.engine import Predictor, evaluate
    from osteon.tasks import ClassPrediction

    result = evaluate(tiled_run, split="test")
    assert result["task"] == "tiled" and "auc" in result and result["operating_point"]["chosen_on"] == "val"
    table = pd.read_csv(tiled_run / "predictions_val.csv")
    assert {"prob_1", "truth", "tiles", "tiles_total", "key_tile_xyxy", "key_tile_weight"} <= set(table)
    # 16 tiles of 64 px cover 256 px; the 6 with most foreground are used
    assert (table["tiles"] == 6).all() and (table["tiles_total"] == 16).all()
    boxes = np.array([[float(v) for v in b.split(",")] for b in table["key_tile_xyxy"]])
    assert boxes.min() >= 0 and boxes.max() <= 256 and np.allclose(boxes[:, 2] - boxes[:, 0], 64)
    predictor = Predictor.from_run(tiled_run)
    prediction = predictor.predict_image(tiled_data.parent / "im01.png")
    assert isinstance(prediction, ClassPrediction) and prediction.class_names == ("0", "1")
    row = table[table["image"].str.endswith(Path(table["image"].iloc[0]).name)].iloc[0]
    again = predictor.predict_image(tiled_data.parent / Path(row["image"]).name)
    assert np.isclose(again.probabilities[1], row["prob_1"], atol=1e-5)  # deterministic tiles at evaluation
    with pytest.raises(ConfigError, match="In-memory frames"):  # a tiled model reads files at full resolution
        predictor.predict_frames([np.zeros((64, 64), np.float32)], ["frame#0"])


def test_stitched_cams_have_the_original_shape(tiled_run: Path, tiled_data: Path, tmp_path: Path) -> None:
    from osteon.engine import Predictor
    from osteon.explain import explain_targets

    predictor = Predictor.from_run(tiled_run)
    wide = tiled_data.parent / "wide.png"
    explanations = explain_targets(predictor, wide, targets=["all"], out_dir=tmp_path)
    assert [e.method for e in explanations] == ["gradcam", "gradcam", "attention"]
    for e in explanations:
        assert e.map.shape == (200, 300) and e.map.dtype == np.float32
        assert e.map.min() >= 0 and e.map.max() <= 1
        assert e.overlay is not None and e.overlay.is_file() and e.raw is not None
        assert Image.open(e.overlay).size[1] >= 200  # drawn at the original resolution (plus a colour bar)
    attention = explanations[-1]
    x1, y1, x2, y2 = attention.region  # type: ignore[misc]
    assert 0 <= x1 < x2 <= 300 and 0 <= y1 < y2 <= 200
    assert attention.map[int(y1) + 1, int(x1) + 1] == pytest.approx(1.0, abs=0.05)  # the key tile is the hottest
    with pytest.raises(ConfigError, match="gradcam only"):
        explain_targets(predictor, wide, method="eigencam")


def test_tiled_cli_evaluate_predict_explain_report(tiled_run: Path, tiled_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(tiled_run), "--split", "test"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(tiled_run), str(tiled_data.parent / "wide.png"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["tiles"].tolist() == [6]
    result = runner.invoke(
        app, ["explain", str(tiled_run), str(tiled_data.parent / "im03.png"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert list(tmp_path.glob("im03_gradcam_*.png")) and (tmp_path / "im03_attention.png").is_file()
    result = runner.invoke(app, ["report", str(tiled_run)])
    assert result.exit_code == 0, result.output
    assert (tiled_run / "report.html").is_file()


def test_no_more_than_max_tiles_go_through_the_backbone(
    tiled_data: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training and prediction forward at most ``max_tiles`` tiles per image, however large the image."""
    from osteon.models.slices import SliceModel

    per_image: list[int] = []
    original = SliceModel.slice_features

    def counting(self: SliceModel, x: object) -> object:
        per_image.append(int(x.shape[1]))  # type: ignore[attr-defined]
        return original(self, x)  # type: ignore[arg-type]

    monkeypatch.setattr(SliceModel, "slice_features", counting)
    run = _train(tiled_data, tmp_path / "run", tile_pooling="max", max_tiles=3, tile_size=32, epochs=1)
    assert per_image and max(per_image) == 3
    assert pd.read_csv(run / "predictions_val.csv")["tiles"].eq(3).all()


def test_tile_cache_keeps_integers_at_the_tile_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from osteon.tasks.tiled import tiled_image

    monkeypatch.setenv("OSTEON_VOLUME_CACHE", str(tmp_path / "cache"))
    eight = tmp_path / "a.png"
    Image.fromarray(np.full((300, 200), 128, np.uint8)).save(eight)
    image = tiled_image(eight, scale=0.5, max_side=None)
    assert image.pixels.dtype == np.uint8 and image.hw == (150, 100) and image.original_hw == (300, 200)
    assert isinstance(image.pixels, np.memmap)
    capped = tiled_image(eight, scale=1.0, max_side=120)
    assert capped.hw == (120, 80) and capped.original_hw == (300, 200)
    sixteen = tmp_path / "b.png"
    Image.fromarray(np.full((64, 64), 40000, np.uint16)).save(sixteen)
    deep = tiled_image(sixteen, scale=1.0, max_side=None)
    assert deep.pixels.dtype == np.uint16 and abs(int(deep.pixels[0, 0]) - 40000) <= 2


def test_tiled_refuses_bad_options(tiled_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tile_pooling"):
        _train(tiled_data, tmp_path / "a", tile_pooling="median")
    with pytest.raises(ConfigError, match="tile_max_side"):
        _train(tiled_data, tmp_path / "b", tile_max_side=32)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_documented_fracatlas_config_is_valid() -> None:
    from osteon.engine.config import TrainConfig
    from osteon.tasks import TASKS, TaskState

    config = Path(__file__).resolve().parents[2] / "configs" / "fracatlas_tiled.yaml"
    cfg = TrainConfig.from_sources(config)
    state = TASKS.get("tiled").configure(TaskState("tiled", "fractured", ["0", "1"], "1"), cfg)
    assert state.extra["tile_size"] == 256 and state.extra["tile_context"] is True
    assert state.extra["tile_max_side"] == 1024 and state.extra["pooling"] == "attention"
