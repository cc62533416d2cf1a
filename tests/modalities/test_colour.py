"""Colour input: grey or RGB chosen from the data, recorded in the run, used by Predictor and explain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage

from osteon.data.channels import choose_channels
from osteon.data.transforms import Preprocessing, load_unit_image
from osteon.errors import ConfigError
from osteon.io import is_colour, read_image, to_rgb_float


def _colour_dataset(root: Path, n: int = 24, size: int = 40, *, grey: bool = False) -> Path:
    """Images whose class is told by colour only: red vs blue discs of the same brightness (luma)."""
    rng = np.random.default_rng(0)
    rows = []
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        label = i % 2
        image = np.full((size, size, 3), 60, dtype=np.int16)
        cy, cx = rng.integers(12, size - 12, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 64
        # red (200, 60, 60) and a green of nearly equal luma: 0.299*200 + 0.587*60 + 0.114*60 = 101.9 vs 101.7
        image[disc] = (200, 60, 60) if label else (60, 131, 60)
        image = np.clip(image + rng.integers(-12, 13, (size, size, 1)), 0, 255).astype(np.uint8)  # same on R, G, B
        if grey:
            image[:] = image.mean(axis=2, keepdims=True).astype(np.uint8)
        mask = (disc * 255).astype(np.uint8)
        PILImage.fromarray(image).save(root / f"img{i}.png")
        PILImage.fromarray(mask).save(root / f"mask{i}.png")
        split = "train" if i < n * 2 // 3 else "val"
        rows.append(
            {"image": f"img{i}.png", "mask": f"mask{i}.png", "label": str(label), "patient_id": f"p{i}", "split": split}
        )
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_rgb_float_keeps_channels_and_grey_repeats(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    PILImage.fromarray(rgb).save(tmp_path / "red.png")
    image = read_image(tmp_path / "red.png")
    assert is_colour(image)
    out = to_rgb_float(image)
    assert out.shape == (3, 4, 5) and out[0].min() == 1.0 and out[1:].max() == 0.0
    PILImage.fromarray(np.full((4, 5), 128, np.uint8)).save(tmp_path / "grey.png")
    grey = to_rgb_float(read_image(tmp_path / "grey.png"))
    assert grey.shape == (3, 4, 5) and np.allclose(grey[0], grey[2])
    # a grey picture stored as RGB is not colour
    PILImage.fromarray(np.full((4, 5, 3), 90, np.uint8)).save(tmp_path / "greyrgb.png")
    assert not is_colour(read_image(tmp_path / "greyrgb.png"))


def test_letterbox_of_colour_keeps_geometry(tmp_path: Path) -> None:
    rgb = np.zeros((20, 40, 3), dtype=np.uint8)
    rgb[:, :20, 1] = 255
    PILImage.fromarray(rgb).save(tmp_path / "wide.png")
    grey_unit, grey_box = load_unit_image(tmp_path / "wide.png", Preprocessing(32))
    unit, box = load_unit_image(tmp_path / "wide.png", Preprocessing(32, channels=3))
    assert unit.shape == (3, 32, 32) and grey_unit.shape == (32, 32)
    assert box == grey_box
    assert unit[1, 16, 4] > 0.9 and unit[1, 16, 28] < 0.1 and unit[0].max() < 0.1


def test_choose_channels(tmp_path: Path) -> None:
    manifest = _colour_dataset(tmp_path, n=6)
    paths = sorted(tmp_path.glob("img*.png"))
    assert choose_channels(paths).channels == 3
    assert choose_channels(paths, "grey").channels == 1
    grey_dir = tmp_path / "g"
    grey_dir.mkdir()
    _colour_dataset(grey_dir, n=4, grey=True)
    assert choose_channels(sorted(grey_dir.glob("img*.png"))).channels == 1
    with pytest.raises(ConfigError, match="channels"):
        choose_channels(paths, "colour")
    assert manifest.is_file()


@pytest.mark.slow
def test_colour_only_task_is_learnt_in_rgb_not_grey(tmp_path: Path) -> None:
    """Red vs blue discs of equal luminance: RGB input learns them, grey input cannot (chance)."""
    from osteon.engine import Predictor, train

    manifest = _colour_dataset(tmp_path, n=48, size=32)
    runs = {}
    for channels in ("auto", "grey"):
        runs[channels] = train(
            task="classify",
            data=str(manifest),
            model="tiny_cnn",
            epochs=6,
            image_size=32,
            batch_size=8,
            lr=3e-3,
            augment=False,
            channels=channels,
            out=str(tmp_path / f"run_{channels}"),
            progress=False,
        )
    state = runs["auto"].read_json(runs["auto"].state)
    assert state["preprocessing"]["channels"] == 3 and state["task"]["extra"]["in_chans"] == 3
    assert "colour" in state["task"]["extra"]["channels_reason"]
    assert state["input_channels"]["channels"] == 3
    grey_state = runs["grey"].read_json(runs["grey"].state)
    assert grey_state["input_channels"] == {"channels": 1, "reason": "grey, as asked (--channels grey)"}
    assert "in_chans" not in grey_state["task"]["extra"]
    predictor = Predictor.from_run(runs["auto"].path)
    assert predictor.preprocessing.channels == 3
    frame = predictor.predict_paths([*sorted(tmp_path.glob("img4*.png")), tmp_path / "img1.png"], progress=False)
    assert (frame["error"] == "").all()
    val = pd.read_csv(runs["auto"].predictions("val"))
    grey_val = pd.read_csv(runs["grey"].predictions("val"))
    acc = (val["prediction"].astype(str) == val["truth"].astype(str)).mean()
    grey_acc = (grey_val["prediction"].astype(str) == grey_val["truth"].astype(str)).mean()
    assert acc >= 0.9, val
    assert grey_acc <= 0.75
    # explain works on colour input (the overlay is drawn on a grey plane)
    from osteon.explain import explain_image

    explanation = explain_image(predictor, tmp_path / "img1.png")
    assert explanation.map.shape == (32, 32)


def test_segment_trains_and_predicts_on_colour(tmp_path: Path) -> None:
    from osteon.engine import Predictor, train

    manifest = _colour_dataset(tmp_path, n=12, size=32)
    run = train(
        task="segment",
        data=str(manifest),
        model="tiny_unet",
        epochs=1,
        image_size=32,
        batch_size=4,
        out=str(tmp_path / "seg"),
        progress=False,
    )
    predictor = Predictor.from_run(run.path)
    assert predictor.preprocessing.channels == 3
    prediction = predictor.predict_image(tmp_path / "img0.png")
    assert prediction.mask.shape == (32, 32)


def test_detect_refuses_rgb(tmp_path: Path) -> None:
    from osteon.engine.config import TrainConfig
    from osteon.engine.prepare import _input_channels
    from osteon.tasks import TASKS

    manifest_path = _colour_dataset(tmp_path, n=4)
    cfg = TrainConfig(task="detect", data=str(manifest_path), channels="rgb")
    with pytest.raises(ConfigError, match="grey images only"):
        _input_channels(TASKS.get("detect"), None, cfg)  # type: ignore[arg-type]
