"""The box scale chosen on validation: the search, and the detect task that keeps and applies it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from osteon.data.boxes import ImageBoxes
from osteon.data.manifest import Manifest
from osteon.data.transforms import Letterbox
from osteon.tasks import TaskState, build_task
from osteon.tasks._box_scale import MIN_PAIRS, SCALES, choose_box_scale, scale_boxes
from osteon.tasks.detect import DetectionTask

pytestmark = pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")


def true_boxes(n: int, seed: int = 0) -> list[np.ndarray]:
    """One or two boxes per image, 20–60 px wide, somewhere in a 512-px image."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 3))
        xy = rng.uniform(50, 400, size=(k, 2))
        wh = rng.uniform(20, 60, size=(k, 2))
        out.append(np.concatenate([xy, xy + wh], axis=1))
    return out


def predicted(boxes: list[np.ndarray], factor: float, seed: int = 1) -> list[ImageBoxes]:
    """Each true box found with a score, scaled by ``factor`` and moved by a few pixels, plus one false box."""
    rng = np.random.default_rng(seed)
    out = []
    for b in boxes:
        found = scale_boxes(b, factor) + rng.normal(0, 2, size=b.shape)
        false = np.array([[5.0, 5.0, 40.0, 40.0]])
        all_boxes = np.concatenate([found, false])
        scores = np.concatenate([rng.uniform(0.5, 1.0, len(b)), [0.3]])
        out.append(ImageBoxes(all_boxes, np.zeros(len(all_boxes), int), scores))
    return out


def test_scale_boxes_keeps_centres_and_scales_sides() -> None:
    boxes = np.array([[10.0, 20.0, 30.0, 60.0]])
    scaled = scale_boxes(boxes, 0.5)
    np.testing.assert_allclose(scaled, [[15.0, 30.0, 25.0, 50.0]])
    np.testing.assert_allclose(scale_boxes(boxes, 1.0), boxes)
    assert scale_boxes(np.zeros((0, 4)), 0.8).shape == (0, 4)


@pytest.mark.parametrize(("inflation", "expected"), [(1.0, 1.0), (1.25, 0.8), (0.8, 1.25), (1.6, 0.65)])
def test_the_chosen_scale_undoes_a_systematic_size_error(inflation: float, expected: float) -> None:
    truth_boxes = true_boxes(40)
    truth = [ImageBoxes(b, np.zeros(len(b), int)) for b in truth_boxes]
    chosen = choose_box_scale(truth, predicted(truth_boxes, inflation), n_classes=1)
    assert chosen is not None and chosen["chosen_on"] == "val"
    # one grid step; 1/1.6 is below the grid: its lowest factor, 0.7
    assert chosen["box_scale"] == pytest.approx(max(expected, SCALES[0]), abs=0.051)
    assert set(chosen["map50_by_scale"]) == {f"{s:.2f}" for s in SCALES} and chosen["n_pairs"] >= 40
    assert chosen["median_size_ratio"] == pytest.approx(inflation, rel=0.05)


def test_no_true_boxes_no_choice() -> None:
    empty = [ImageBoxes(np.zeros((0, 4)), np.zeros(0, int))]
    assert choose_box_scale(empty, empty, n_classes=1) is None


@pytest.fixture
def task() -> DetectionTask:
    rows = [{"image": f"im{i}.png", "split": "train", "boxes": json.dumps([{"xyxy": [10, 10, 50, 50], "label": "fx"}])}
            for i in range(2)]  # fmt: skip
    manifest = Manifest(pd.DataFrame(rows), root="/", name="tiny")
    state = DetectionTask.setup(manifest, target=None, positive_class=None, loss=None)
    return build_task(TaskState(**{**state.__dict__, "extra": {"plan": {}}}))  # type: ignore[return-value]


def validation_frame(factor: float) -> pd.DataFrame:
    truth_boxes = true_boxes(30, seed=2)
    preds = predicted(truth_boxes, factor, seed=3)
    as_json = lambda boxes, scores: json.dumps(  # noqa: E731
        [{"xyxy": list(map(float, b)), "label": "fx", **({"score": float(s)} if s is not None else {})}
         for b, s in zip(boxes, scores if scores is not None else [None] * len(boxes), strict=True)]
    )  # fmt: skip
    return pd.DataFrame(
        {
            "image": [f"v{i}.png" for i in range(len(truth_boxes))],
            "truth": [as_json(b, None) for b in truth_boxes],
            "pred_boxes": [as_json(p.boxes, p.scores) for p in preds],
        }
    )


def test_detect_task_calibrates_keeps_and_applies_the_scale(task: DetectionTask) -> None:
    frame = validation_frame(1.25)
    calibrated = task.calibrate(frame)
    assert calibrated is not None
    factor = calibrated.extra["calibration"]["box_scale"]
    assert factor == pytest.approx(0.8, abs=0.051)
    scaled = build_task(calibrated)
    outputs = [{"boxes": torch.tensor([[10.0, 10.0, 50.0, 30.0]]), "scores": torch.tensor([0.9]),
                "labels": torch.tensor([0])}]  # fmt: skip
    box = scaled.predict(outputs)[0].boxes_xyxy[0]
    np.testing.assert_allclose(box, scale_boxes(np.array([10.0, 10.0, 50.0, 30.0]), factor)[0])
    geometry = Letterbox(scale=0.5, pad_x=0, pad_y=0, original_hw=(200, 200))  # input → original: × 2
    np.testing.assert_allclose(scaled.predict(outputs, geometry=[geometry])[0].boxes_xyxy[0], box * 2)
    # the predictions of the calibrated model (its boxes already scaled) lead to the same choice: nothing changes
    rescaled = frame.assign(
        pred_boxes=[
            json.dumps([{**r, "xyxy": list(scale_boxes(np.array(r["xyxy"]), factor)[0])} for r in json.loads(v)])
            for v in frame["pred_boxes"]
        ]
    )
    assert scaled.calibrate(rescaled) is None


def test_a_configured_scale_is_kept(task: DetectionTask, tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "a.png")
    cfg = SimpleNamespace(covariates=[], image_size=64, model="retinanet", encoder="resnet18", backend="torchvision",
                          score_threshold=0.05, box_scale=0.9, model_fields_set={"model"})  # fmt: skip
    rows = [{"image": "a.png", "split": "train", "boxes": json.dumps([{"xyxy": [1, 1, 9, 9], "label": "fx"}])}]
    manifest = Manifest(pd.DataFrame(rows), root=tmp_path, name="tiny")
    configured = build_task(DetectionTask.plan(task.state, manifest, cfg))
    assert configured.box_scale == 0.9
    assert configured.calibrate(validation_frame(1.25)) is None  # the user's factor wins
    assert task.calibrate(pd.DataFrame({"image": ["a"], "truth": [None], "pred_boxes": ["[]"]})) is None


def test_too_few_found_boxes_keep_the_networks_own() -> None:
    truth_boxes = true_boxes(4)  # 4-8 boxes: fewer than MIN_PAIRS pairs to estimate a size bias from
    truth = [ImageBoxes(b, np.zeros(len(b), int)) for b in truth_boxes]
    chosen = choose_box_scale(truth, predicted(truth_boxes, 1.5), n_classes=1)
    assert chosen is not None and chosen["box_scale"] == 1.0 and 0 < chosen["n_pairs"] < MIN_PAIRS


def test_unreadable_validation_images_are_left_out(task: DetectionTask) -> None:
    clean = validation_frame(1.25)
    broken = pd.DataFrame({"image": ["gone.png"], "truth": [clean["truth"][0]], "pred_boxes": [None]})
    frame = pd.concat([clean.assign(error=""), broken.assign(error="ImageReadError: gone.png")], ignore_index=True)
    calibrated, expected = task.calibrate(frame), task.calibrate(clean)
    assert calibrated is not None and expected is not None
    # the unreadable image's true boxes count neither as found nor as missed
    assert calibrated.extra["calibration"] == expected.extra["calibration"]
