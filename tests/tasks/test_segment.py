"""The segment task's hooks: set-up from polygons and label maps, datasets, losses, sliding-window inference
aligned with the original pixels of a large non-square image, measurements and bad masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image as PILImage
from torch import nn

from osteon.data.datasets import decode_images
from osteon.data.manifest import Manifest
from osteon.data.masks import read_label_map
from osteon.data.transforms import Preprocessing
from osteon.engine.outputs import MaskFileWriter
from osteon.errors import ConfigError, ImageReadError
from osteon.tasks import TaskState
from osteon.tasks._segment_infer import window_logits
from osteon.tasks.segment import SegmentationTask, build_loss


class Pointwise(nn.Module):
    """A "model" that calls bright pixels foreground: logits = 8 · normalised intensity (no learning needed)."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        logits = 8 * x + self.dummy
        if self.channels == 1:  # sigmoid: one foreground channel
            return logits
        return torch.cat([-logits, torch.full_like(logits, -30.0), logits], dim=1)  # softmax: background, a, b


def _manifest(frame: pd.DataFrame, root: Path) -> Manifest:
    return Manifest(frame.assign(patient_id=[f"p{i}" for i in range(len(frame))]), root=root, name="t")


def _state(**extra: object) -> TaskState:
    base = {"source": "mask", "mask_values": [0, 1], "patch_size": None, "window_overlap": 0.25, "image_size": 64}
    return TaskState("segment", "mask", ["background", "1"], None, False, "dice_ce", {**base, **extra})


# -- set-up ------------------------------------------------------------------------------------------------------
def _poly(x0: float, y0: float, x1: float, y1: float, label: str) -> dict:
    return {"points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "label": label}


def test_setup_from_polygons_finds_classes_and_overlap(tmp_path: Path) -> None:
    apart = [json.dumps([_poly(0, 0, 4, 4, "bone"), _poly(10, 10, 14, 14, "fracture")]), "[]", pd.NA]
    state = SegmentationTask.setup(
        _manifest(pd.DataFrame({"image": ["a.png", "b.png", "c.png"], "polygons": apart}), tmp_path),
        target=None,
        positive_class=None,
        loss=None,
    )
    assert state.class_names == ["background", "bone", "fracture"] and not state.multilabel
    assert state.extra["source"] == "polygons" and state.loss == "dice_ce"
    task = SegmentationTask(state)
    assert task.num_outputs == 3 and not task.sigmoid  # softmax over background + 2 classes
    missing = task.missing_targets(_manifest(pd.DataFrame({"image": ["a", "b", "c"], "polygons": apart}), tmp_path))
    assert missing.tolist() == [False, False, True]  # "[]" is a valid empty target, NA is "not annotated"

    overlapping = [json.dumps([_poly(0, 0, 8, 8, "bone"), _poly(4, 4, 12, 12, "fracture")])]
    state = SegmentationTask.setup(
        _manifest(pd.DataFrame({"image": ["a.png"], "polygons": overlapping}), tmp_path),
        target="polygons",
        positive_class=None,
        loss="dice",
    )
    assert state.multilabel and SegmentationTask(state).num_outputs == 2 and SegmentationTask(state).sigmoid


def test_setup_from_label_maps_reads_their_values(tmp_path: Path) -> None:
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[2:4, 2:4] = 255
    PILImage.fromarray(mask).save(tmp_path / "m.png")
    frame = pd.DataFrame({"image": ["a.png", "b.png"], "mask": ["m.png", pd.NA]})
    state = SegmentationTask.setup(_manifest(frame, tmp_path), target=None, positive_class=None, loss=None)
    assert state.class_names == ["background", "255"] and state.extra["mask_values"] == [0, 255]
    assert not SegmentationTask(state).missing_targets(_manifest(frame, tmp_path)).any()  # NA mask = background


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"image": ["a.png"], "label": ["x"]}), {}, "no masks to learn from"),
        (pd.DataFrame({"image": ["a.png"], "polygons": ["[]"]}), {}, "no foreground"),
        (
            pd.DataFrame({"image": ["a.png"], "polygons": [json.dumps([_poly(0, 0, 2, 2, "f")])]}),
            {"loss": "ce"},
            "dice",
        ),
        (
            pd.DataFrame({"image": ["a.png"], "polygons": [json.dumps([_poly(0, 0, 2, 2, "f")])]}),
            {"positive_class": "f"},
            "positive_class",
        ),
    ],
)
def test_setup_errors_say_what_to_fix(tmp_path: Path, frame: pd.DataFrame, kwargs: dict, message: str) -> None:
    options = {"target": None, "positive_class": None, "loss": None, **kwargs}
    with pytest.raises(ConfigError, match=message):
        SegmentationTask.setup(_manifest(frame, tmp_path), **options)


# -- losses ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dice", "dice_ce", "focal", "dice_focal"])
@pytest.mark.parametrize("sigmoid", [True, False])
def test_every_loss_is_finite_and_lower_for_the_right_answer(name: str, sigmoid: bool) -> None:
    loss = build_loss(name, sigmoid=sigmoid)
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:10, 4:10] = 1
    if sigmoid:
        good, bad = 12 * (target - 0.5), -12 * (target - 0.5)
        y = target
    else:
        good = torch.cat([-12 * (target - 0.5), 12 * (target - 0.5)], dim=1)
        bad = -good
        y = target.long()
    assert torch.isfinite(loss(good, y)) and float(loss(good, y)) < float(loss(bad, y))


# -- datasets --------------------------------------------------------------------------------------------------------
def _write_case(root: Path, name: str, hw: tuple[int, int], box: tuple[int, int, int, int], value: int = 1) -> None:
    image = np.full(hw, 25, dtype=np.uint8)
    mask = np.zeros(hw, dtype=np.uint8)
    r0, r1, c0, c1 = box
    image[r0:r1, c0:c1] = 230
    mask[r0:r1, c0:c1] = value
    PILImage.fromarray(image).save(root / f"{name}.png")
    PILImage.fromarray(mask).save(root / f"{name}_mask.png")


def _dataset(task: SegmentationTask, manifest: Manifest, size: int) -> object:
    prep = Preprocessing(image_size=size)
    rows = np.arange(len(manifest))
    decoded = decode_images(manifest.paths_of(rows), prep, progress=False)
    return task.make_dataset(manifest, rows, decoded, covariates=None, augment=None, prep=prep)


def test_training_sets_yield_patches_with_foreground_oversampling(tmp_path: Path) -> None:
    for i in range(3):
        _write_case(tmp_path, f"c{i}", (64, 64), (40, 46, 50, 60))
    frame = pd.DataFrame(
        {"image": [f"c{i}.png" for i in range(3)], "mask": [f"c{i}_mask.png" for i in range(3)], "split": ["train"] * 3}
    )
    task = SegmentationTask(_state(patch_size=16))
    train_set = _dataset(task, _manifest(frame, tmp_path), 64)
    train_set.foreground_fraction = 1.0
    items = [train_set[i % 3] for i in range(12)]
    assert all(it["image"].shape == (1, 16, 16) and it["mask"].shape == (1, 16, 16) for it in items)
    assert all(int(it["mask"].sum()) > 0 for it in items)  # every crop centred near foreground
    val_set = _dataset(task, _manifest(frame.assign(split="val"), tmp_path), 64)
    assert val_set[0]["image"].shape == (1, 64, 64)  # validation and prediction see whole images


# -- sliding window: shape and alignment on a large non-square image ---------------------------------------------------
def test_sliding_window_equals_one_pass_for_a_pointwise_model() -> None:
    x = torch.randn(2, 1, 96, 96)
    model = Pointwise()
    windowed = window_logits(model, x, roi=32, overlap=0.5, batch_size=4, pad_value=-2.0)
    assert windowed.shape == (2, 1, 96, 96)
    torch.testing.assert_close(windowed, model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_mask_comes_back_in_the_original_pixels_of_a_large_non_square_image(tmp_path: Path, channels: int) -> None:
    h, w = 300, 700
    box = (100, 200, 250, 550)  # rows 100..199, cols 250..549
    _write_case(tmp_path, "big", (h, w), box)
    names = ["background", "1"] if channels == 1 else ["background", "a", "b"]
    state = _state(patch_size=64, image_size=256)
    state.class_names = names
    task = SegmentationTask(state)
    prediction = task.predict_image(Pointwise(channels), tmp_path / "big.png", prep=Preprocessing(image_size=256))
    mask = prediction.channels()[-1]
    assert mask.shape == (h, w) and prediction.probabilities.shape[1:] == (h, w)
    truth = np.zeros((h, w), dtype=bool)
    truth[box[0] : box[1], box[2] : box[3]] = True
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.95
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - 149.5) < 1.0 and abs(cols.mean() - 399.5) < 1.0
    bbox = prediction.measurements[names[-1]]["bbox"]
    assert np.allclose(bbox, [250, 100, 550, 200], atol=3)
    assert prediction.measurements[names[-1]]["components"] == 1


# -- predictions table, measurements, bad masks ----------------------------------------------------------------------
def test_predict_rows_writes_masks_measurements_and_metrics(tmp_path: Path) -> None:
    _write_case(tmp_path, "a", (90, 150), (30, 60, 40, 110))
    _write_case(tmp_path, "b", (120, 80), (10, 20, 10, 30))
    frame = pd.DataFrame(
        {
            "image": ["a.png", "b.png"],
            "mask": ["a_mask.png", "b_mask.png"],
            "spacing_row": [0.2, np.nan],
            "spacing_col": [0.1, np.nan],
        }
    )
    manifest = _manifest(frame, tmp_path)
    task = SegmentationTask(_state(image_size=64))
    table = task.predict_rows(
        Pointwise(), manifest, _dataset(task, manifest, 64), batch_size=2, outputs=MaskFileWriter(tmp_path / "out")
    )
    assert list(table["truth"]) == ["1", "1"] and list(table["prediction"]) == ["1", "1"]
    saved = read_label_map(table.loc[0, "mask_file"])
    assert saved.shape == (90, 150) and set(np.unique(saved)) == {0, 1}
    assert Path(table.loc[0, "truth_file"]).is_file()
    assert abs(table.loc[0, "area_px_1"] - 30 * 70) < 0.1 * 30 * 70
    assert table.loc[0, "area_mm2_1"] == pytest.approx(table.loc[0, "area_px_1"] * 0.02)
    assert np.isnan(table.loc[1, "area_mm2_1"])  # no spacing: pixels only
    assert table.loc[0, "dice_1"] > 0.9 and table.loc[0, "components_1"] == 1
    assert table.loc[0, "hd95_mm_1"] <= table.loc[0, "hd95_1"]  # 0.1-0.2 mm pixels
    assert json.loads(table.loc[1, "bbox_1"]) == pytest.approx([10, 10, 30, 20], abs=2)
    result = task.evaluate(table, operating_point=None, n_resamples=50, seed=0)
    assert result["dice"]["estimate"] == pytest.approx(table["dice_1"].mean())
    assert result["distance_unit"] == "px"  # one image has no spacing, so distances stay in pixels


def test_mask_of_the_wrong_size_raises_naming_both_sizes(tmp_path: Path) -> None:
    _write_case(tmp_path, "a", (40, 60), (5, 10, 5, 10))
    PILImage.fromarray(np.zeros((30, 60), dtype=np.uint8)).save(tmp_path / "a_mask.png")
    manifest = _manifest(pd.DataFrame({"image": ["a.png"], "mask": ["a_mask.png"]}), tmp_path)
    with pytest.raises(ImageReadError, match=r"a_mask.png.*30×60.*40×60"):
        _dataset(SegmentationTask(_state()), manifest, 32)


def test_unknown_class_value_in_a_mask_raises(tmp_path: Path) -> None:
    _write_case(tmp_path, "a", (40, 60), (5, 10, 5, 10), value=5)
    manifest = _manifest(pd.DataFrame({"image": ["a.png"], "mask": ["a_mask.png"]}), tmp_path)
    with pytest.raises(ImageReadError, match=r"value\(s\) \[5\]"):
        _dataset(SegmentationTask(_state()), manifest, 32)
