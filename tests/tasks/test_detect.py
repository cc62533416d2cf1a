"""The detect task without the engine: classes, the plan, boxes into the input and back, models, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from osteon.data.datasets import decode_images
from osteon.data.manifest import Manifest
from osteon.data.transforms import Preprocessing, build_augmentation
from osteon.errors import ConfigError, DatasetFormatError, UnknownNameError
from osteon.models.detection import DetectorSpec, build_detector
from osteon.tasks import TaskState, build_task
from osteon.tasks._detect_plan import plan_anchors, resolve_architecture
from osteon.tasks.detect import DetectionTask

pytestmark = pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")


def box_json(*boxes: tuple[float, float, float, float, str]) -> str:
    return json.dumps([{"xyxy": list(b[:4]), "label": b[4]} for b in boxes])


@pytest.fixture
def small_set(tmp_path: Path) -> Manifest:
    """Four 100×50 images (wide: letterboxed with vertical padding) with boxes, one negative, one unlabelled."""
    rows = []
    for i in range(4):
        Image.fromarray(np.zeros((50, 100), np.uint8)).save(tmp_path / f"im{i}.png")
    boxes = [box_json((10, 10, 30, 20, "fx"), (50, 5, 90, 45, "plate")), box_json((0, 0, 100, 50, "fx")), "[]", None]
    for i, b in enumerate(boxes):
        rows.append({"image": f"im{i}.png", "patient_id": f"p{i}", "split": "train" if i < 2 else "val", "boxes": b})
    return Manifest(pd.DataFrame(rows), root=tmp_path, name="small")


def planned_task(manifest: Manifest, tmp_path: Path, **cfg: object) -> DetectionTask:
    state = DetectionTask.setup(manifest, target=None, positive_class=None, loss=None)
    options = {"covariates": [], "image_size": 64, "model": "retinanet", "encoder": "resnet18"}
    options |= {"backend": "torchvision", "score_threshold": 0.05, **cfg}
    state = DetectionTask.plan(state, manifest, SimpleNamespace(**options))
    return build_task(state)  # type: ignore[return-value]


def test_setup_plan_and_state(small_set: Manifest, tmp_path: Path) -> None:
    task = planned_task(small_set, tmp_path)
    assert task.class_names == ["fx", "plate"]
    assert task.missing_targets(small_set).tolist() == [False, False, False, True]  # "[]" is a valid negative
    plan = task.state.extra["plan"]  # the task keeps its plan in the state; the engine writes plan.json
    assert json.loads(json.dumps(plan)) == plan and plan["box_statistics"]["n_boxes"] == 3
    assert not (tmp_path / "plan.json").exists()  # tasks never write files
    # train boxes at 64 px (scale 0.64): sides sqrt(20·10)·.64=9.1, sqrt(40·40)·.64=25.6, sqrt(100·50)·.64=45.3
    assert plan["box_statistics"]["side_px_percentiles"]["50"] == pytest.approx(25.6, abs=0.1)
    assert plan["anchor_sizes"][0][0] == pytest.approx(9.1 + 0.05 * (25.6 - 9.1) * 2, abs=0.5)  # p5, interpolated


def test_anchor_plan_rules() -> None:
    stats = {"side_px_percentiles": {"5": 20.0}, "aspect_hw_percentiles": {"15": 0.3, "50": 1.0, "85": 3.0}}
    sizes, ratios = plan_anchors("retinanet", stats)
    assert [level[0] for level in sizes] == [20.0, 40.0, 80.0, 160.0, 320.0] and ratios == [0.3, 1.0, 3.0]
    assert plan_anchors("retinanet", {"side_px_percentiles": {"5": 1.0}})[0][0][0] == 4.0  # ≥ half the stride
    assert plan_anchors("fcos", stats) == ([[8.0], [16.0], [32.0], [64.0], [128.0]], [1.0])
    assert len(plan_anchors("faster_rcnn", stats)[0][0]) == 1
    assert resolve_architecture(None, None, "torchvision") == ("centernet", "timm:mobilenetv4_conv_small")  # default
    assert resolve_architecture("resnet18", None, "torchvision") == ("centernet", "timm:resnet18")  # an encoder
    assert resolve_architecture("retinanet", None, "torchvision") == ("retinanet", "resnet18")
    assert resolve_architecture("yolo26n-p2", None, "yolo") == ("yolo26n-p2", "yolo")
    assert resolve_architecture("fcos", "timm:resnet10t", "torchvision") == ("fcos", "timm:resnet10t")
    with pytest.raises(UnknownNameError, match="retinanet"):
        resolve_architecture("retinanett", None, "torchvision")
    with pytest.raises(ConfigError, match="backend"):
        resolve_architecture("retinanet", None, "detectron")


def test_dataset_boxes_live_in_the_letterboxed_input(small_set: Manifest, tmp_path: Path) -> None:
    task = planned_task(small_set, tmp_path)
    prep = Preprocessing(image_size=64)
    rows = np.array([0, 1, 2])
    decoded = decode_images(small_set.paths_of(rows), prep, progress=False)
    dataset = task.make_dataset(small_set, rows, decoded, covariates=None, augment=None, prep=prep)
    item = dataset[0]
    # 100×50 → scale 0.64, 64×32 centred: pad_y = 16
    np.testing.assert_allclose(item["boxes"].numpy(), [[6.4, 22.4, 19.2, 28.8], [32.0, 19.2, 57.6, 44.8]], atol=1e-4)
    assert item["labels"].tolist() == [0, 1] and item["image"].shape == (1, 64, 64)
    assert len(dataset[2]["boxes"]) == 0
    augmented = task.make_dataset(
        small_set,
        rows,
        decoded,
        covariates=None,
        augment=build_augmentation(hflip=True, rotate_degrees=10, scale_range=0.2, brightness=0, contrast=0, gamma=0),
        prep=prep,
    )
    for _ in range(4):
        boxes = augmented[1]["boxes"]
        assert len(boxes) == 1 and (boxes >= 0).all() and (boxes <= 64).all()
    batch = task.collate_fn([dataset[0], dataset[2]])  # type: ignore[misc]
    assert batch["image"].shape == (2, 1, 64, 64) and [len(t["boxes"]) for t in batch["targets"]] == [2, 0]


def test_bad_boxes_stop_the_dataset(small_set: Manifest, tmp_path: Path) -> None:
    task = planned_task(small_set, tmp_path)
    prep = Preprocessing(image_size=64)
    bad = small_set.with_columns(boxes=[box_json((10, 10, 130, 20, "fx")), "[]", "[]", "[]"])
    decoded = decode_images(bad.paths_of([0]), prep, progress=False)
    with pytest.raises(DatasetFormatError, match=r"im0\.png: box #0 .* outside the 100×50 image"):
        task.make_dataset(bad, np.array([0]), decoded, covariates=None, augment=None, prep=prep)
    unknown = small_set.with_columns(boxes=[box_json((10, 10, 30, 20, "tumour")), "[]", "[]", "[]"])
    with pytest.raises(ConfigError, match="category 'tumour'"):
        task.make_dataset(unknown, np.array([0]), decoded, covariates=None, augment=None, prep=prep)


def test_predictions_go_back_to_original_pixels(small_set: Manifest, tmp_path: Path) -> None:
    task = planned_task(small_set, tmp_path)
    _, geometry = __import__("osteon.data.transforms", fromlist=["x"]).load_unit_image(
        small_set.paths_of([0])[0], Preprocessing(image_size=64)
    )
    outputs = [
        {
            "boxes": torch.tensor(
                [[6.4, 22.4, 19.2, 28.8], [0.0, 0.0, 64.0, 10.0], [32.0, 19.2, 57.6, 44.8], [0.0, 0.0, 64.0, 16.002]]
            ),
            "scores": torch.tensor([0.5, 0.4, 0.9, 0.3]),
            "labels": torch.tensor([0, 0, 1, 0]),
        }
    ]
    (pred,) = task.predict(outputs, geometry=[geometry])
    # the box in the top padding (pad 16 px) has no area inside the image and is dropped, and so is the one that
    # reaches 0.003 px into it (predictions_<split>.csv, at 2 decimals, would make it 0 px tall); order by score
    assert pred.labels == ("plate", "fx") and pred.scores.tolist() == pytest.approx([0.9, 0.5])
    np.testing.assert_allclose(pred.boxes_xyxy, [[50, 5, 90, 45], [10, 10, 30, 20]], atol=1e-4)


def test_evaluate_and_operating_point_on_a_table(small_set: Manifest, tmp_path: Path) -> None:
    task = planned_task(small_set, tmp_path)
    truth = [box_json((10, 10, 30, 20, "fx")), "[]", box_json((5, 5, 25, 25, "fx"))] * 4
    preds = [
        json.dumps([{"xyxy": [10, 10, 30, 20], "label": "fx", "score": 0.9}]),
        json.dumps([{"xyxy": [60, 5, 80, 25], "label": "fx", "score": 0.6}]),
        json.dumps([{"xyxy": [50, 5, 70, 25], "label": "fx", "score": 0.3}]),
    ] * 4
    frame = pd.DataFrame({"image": [f"i{k}" for k in range(12)], "patient_id": [f"p{k // 2}" for k in range(12)]})
    frame = frame.assign(truth=truth, pred_boxes=preds)
    point = task.choose_operating_point(frame)
    assert point is not None and point["threshold"] == pytest.approx(0.3)  # 1 FP per image allows every box
    result = task.evaluate(frame, operating_point=point, n_resamples=100, seed=0)
    # 8 lesions, 4 found at precision 1, the rest never: COCO's 101-point AP = 51/101 (recall 0..0.5)
    assert result["map50"]["estimate"] == pytest.approx(51 / 101) and result["per_class"]["plate"]["n_true_boxes"] == 0
    # positives score 0.9 (4) or 0.3 (4), negatives 0.6 (4): half the positive–negative pairs are ranked right
    assert result["image_auc"]["estimate"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("architecture", "encoder"),
    [("retinanet", "resnet18"), ("fcos", "resnet18"), ("faster_rcnn", "resnet18"), ("retinanet", "timm:resnet10t")],
)
def test_every_detector_trains_and_predicts(architecture: str, encoder: str) -> None:
    torch.manual_seed(0)
    stats = {"side_px_percentiles": {"5": 8.0}}
    sizes, ratios = plan_anchors(architecture, stats)
    spec = DetectorSpec(architecture, encoder, 2, 64, tuple(map(tuple, sizes)), tuple(ratios), fpn_channels=32)
    model = build_detector(spec)
    model.train()
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    losses = model.losses(torch.randn(2, 1, 64, 64), targets)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    detections = model(torch.randn(2, 1, 64, 64))
    assert len(detections) == 2 and all(set(d) == {"boxes", "scores", "labels"} for d in detections)
    assert all(((d["labels"] >= 0) & (d["labels"] < 2)).all() for d in detections)
    assert model.training  # forward() gives detections without leaving train mode
    layers = dict(model.named_modules())
    assert model.feature_layer in layers


def test_model_errors() -> None:
    with pytest.raises(UnknownNameError, match="resnet18"):
        build_detector(DetectorSpec("retinanet", "resnet81", 1, 64, ((8.0,),) * 5))
    with pytest.raises(ConfigError, match="5 feature levels"):
        build_detector(DetectorSpec("retinanet", "resnet18", 1, 64, ((8.0,),) * 3))
    with pytest.raises(ConfigError, match="no such file"):
        build_detector(DetectorSpec("retinanet", "resnet18", 1, 64, ((8.0,),) * 5), pretrained="/nope/r18.pth")
    task = DetectionTask(TaskState("detect", "boxes", ["fx"]))
    with pytest.raises(ConfigError, match="no plan"):
        task.build_model(model="retinanet", pretrained=None, covariate_dim=0, dropout=0.0)


@pytest.mark.shared_data
def test_fracatlas_plan_on_the_authors_split(shared_data: Path, tmp_path: Path) -> None:
    """FracAtlas: one class (COCO category id 0 is a class, not background), negatives valid, small boxes."""
    import warnings

    from osteon.data.adapters import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_dataset(shared_data / "fracatlas")
        task = planned_task(manifest, tmp_path, image_size=256)
    plan = task.state.extra["plan"]
    assert task.class_names == ["fractured"]
    assert int(task.missing_targets(manifest).sum()) == 0  # the 366 negatives are "[]": labelled, no boxes
    stats = plan["box_statistics"]
    assert stats["n_images"] == 481 and stats["n_images_with_boxes"] == 481  # the authors' train split
    assert stats["side_px_percentiles"]["50"] < 20  # fractures are small: a median box under 20 px at 256
    assert plan["recommended_image_size"] > 256 and plan["notes"]  # and the plan says so


def test_the_default_detector_plans_a_flip_test_unless_turned_off(small_set: Manifest, tmp_path: Path) -> None:
    on = planned_task(small_set, tmp_path, model=None, encoder=None, flip_test=True).state.extra["plan"]
    off = planned_task(small_set, tmp_path, model=None, encoder=None, flip_test=False).state.extra["plan"]
    assert on["architecture"] == "centernet" and on["flip_test"] is True and off["flip_test"] is False
    assert "flip_test" not in planned_task(small_set, tmp_path).state.extra["plan"]  # retinanet has none
