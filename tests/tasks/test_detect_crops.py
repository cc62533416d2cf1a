"""Training crops of the detection dataset and the plan's crop rule."""

from __future__ import annotations

import pytest
import torch

from osteon.errors import ConfigError
from osteon.tasks import _detect_data
from osteon.tasks._detect_data import random_crop
from osteon.tasks._detect_plan import plan_train_crop


def test_a_crop_on_a_finding_keeps_the_box_shifted_into_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_detect_data, "CROP_ON_FINDING", 1.0)
    torch.manual_seed(0)
    image = torch.arange(256 * 256, dtype=torch.float32).reshape(1, 256, 256)
    box = torch.tensor([[150.0, 40.0, 170.0, 60.0]])
    for _ in range(20):
        crop, boxes, labels = random_crop(image, box, torch.tensor([3]), 64)
        assert crop.shape == (1, 64, 64) and len(boxes) == 1 and labels.tolist() == [3]
        x0, y0 = int(crop[0, 0, 0]) % 256, int(crop[0, 0, 0]) // 256  # the window's origin in the image
        assert torch.allclose(boxes[0], (box[0] - torch.tensor([x0, y0, x0, y0])).clamp(0, 64))
        centre = (boxes[0, :2] + boxes[0, 2:]) / 2
        assert bool((centre > 0).all()) and bool((centre < 64).all())


def test_a_box_mostly_outside_the_window_is_dropped_and_a_clipped_one_kept() -> None:
    image = torch.zeros(1, 100, 100)
    torch.manual_seed(0)
    for _ in range(30):  # random windows (no finding forced): boxes either kept clipped (≥ 40% inside) or dropped
        crop, boxes, _ = random_crop(image, torch.tensor([[0.0, 0.0, 100.0, 10.0]]), torch.tensor([0]), 50)
        assert crop.shape == (1, 50, 50)
        assert len(boxes) in (0, 1)
        if len(boxes):
            assert float(boxes[0, 2] - boxes[0, 0]) == 50.0  # at most the window's width of the 100-px box


def test_the_plan_crops_only_fully_convolutional_detectors_at_high_resolution() -> None:
    assert plan_train_crop("centernet", 512, None) == 256  # no box statistics: half the side
    fracatlas = {"side_px_percentiles": {"50": 30.4, "95": 70.9}}  # FracAtlas' train boxes at 512 px
    assert plan_train_crop("centernet", 512, None, fracatlas) == 128  # 4 median sides, rounded up to 32
    large = {"side_px_percentiles": {"50": 60.0, "95": 200.0}}
    assert plan_train_crop("centernet", 512, None, large) == 256  # room for the large boxes, at most half
    tiny = {"side_px_percentiles": {"50": 8.0, "95": 12.0}}
    assert plan_train_crop("centernet", 1024, None, tiny) == 96  # never below MIN_CROP
    assert plan_train_crop("retinanet", 512, None, fracatlas) is None
    assert plan_train_crop("centernet", 256, None) is None
    assert plan_train_crop("centernet", 512, 128) == 128
    with pytest.raises(ConfigError, match="centernet"):
        plan_train_crop("retinanet", 512, 256)
    with pytest.raises(ConfigError, match="larger"):
        plan_train_crop("centernet", 256, 512)
