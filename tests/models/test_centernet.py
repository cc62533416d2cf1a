"""The heat-map detector (models/centernet.py): targets, losses, decoding, and that it learns a box."""

from __future__ import annotations

import pytest
import torch

from osteon.errors import UnknownNameError
from osteon.models.centernet import STRIDE, CenterNet, _encode, _paired_iou
from osteon.models.detection import DetectorSpec, build_detector

ENCODER = "resnet10t"  # small and has stride-4 features


def _target(*boxes: list[float], label: int = 0) -> dict[str, torch.Tensor]:
    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return {"boxes": b, "labels": torch.full((len(b),), label, dtype=torch.long)}


def test_each_box_gets_one_peak_at_its_centre_and_regression_weights_around_it() -> None:
    heat, weight, owner = _encode([_target([16.0, 8.0, 48.0, 40.0]), _target()], torch.Size((2, 2, 16, 16)), 2)
    cx, cy = int(32 / STRIDE), int(24 / STRIDE)
    assert heat[0, 0, cy, cx] == 1.0 and int((heat == 1).sum()) == 1  # one exact positive (focal loss)
    assert heat[0, 1].abs().sum() == 0 and heat[1].abs().sum() == 0  # other class, empty image: no target
    assert weight[0, cy, cx] == 1.0 and 1 < int((weight[0] > 0).sum()) < 64  # several cells regress the box
    assert torch.equal(owner[0, cy, cx], torch.tensor([16.0, 8.0, 48.0, 40.0]))
    assert weight[1].sum() == 0


def test_the_smaller_of_two_overlapping_boxes_owns_the_shared_cells() -> None:
    big, small = [0.0, 0.0, 60.0, 60.0], [24.0, 24.0, 36.0, 36.0]
    _, _, owner = _encode([_target(big, small)], torch.Size((1, 1, 16, 16)), 1)
    assert torch.equal(owner[0, 7, 7], torch.tensor(small))


def test_losses_are_finite_and_detections_follow_the_interface() -> None:
    model = CenterNet(ENCODER, 2, width=16, detections_per_image=5, score_threshold=0.0)
    model.train()
    x = torch.randn(2, 1, 64, 64)
    losses = model.losses(x, [_target([10.0, 10.0, 30.0, 26.0], label=1), _target()])
    assert set(losses) == {"heatmap", "box"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()  # type: ignore[union-attr]
    assert model.lateral[0].weight.grad is not None
    out = model(x)
    assert len(out) == 2 and all(len(o["boxes"]) <= 5 for o in out)
    boxes = out[0]["boxes"]
    assert boxes.shape[1] == 4 and bool((boxes >= 0).all()) and bool((boxes <= 64).all())
    assert set(out[0]["labels"].tolist()) <= {0, 1}
    with pytest.raises(RuntimeError, match="train mode"):
        model.eval().losses(x, [_target(), _target()])


def test_decoding_keeps_a_neighbouring_cell_whose_box_differs_and_drops_duplicates() -> None:
    """Not only local maxima: a cell next to the best one enters the NMS, which drops it only when its box
    overlaps the better one by more than ``nms_iou`` (a peak search would keep the best box alone)."""
    model = CenterNet(ENCODER, 1, width=16, score_threshold=0.05, nms_iou=0.5, detections_per_image=3).eval()
    h = w = 8
    logits = torch.full((1, 1, h, w), -10.0)
    logits[0, 0, 4, 4], logits[0, 0, 4, 5], logits[0, 0, 3, 4] = 3.0, 2.0, 1.0
    sides = torch.full((1, 4, h, w), 4.0)
    sides[0, :, 4, 4] = 12.0  # a 24-px box
    sides[0, :, 4, 5] = 4.0  # an 8-px box inside it (IoU 0.11): a second hypothesis of another extent
    sides[0, :, 3, 4] = 12.0  # a 24-px box shifted by one cell (IoU 0.71): a duplicate
    images = torch.zeros(1, 1, h * STRIDE, w * STRIDE)
    out = model.decode(torch.cat([logits, sides], dim=1), images)[0]
    assert out["scores"].tolist() == pytest.approx(torch.sigmoid(torch.tensor([3.0, 2.0])).tolist())
    centre, right = (4 + 0.5) * STRIDE, (5 + 0.5) * STRIDE
    expected = [[centre - 12, centre - 12, centre + 12, centre + 12], [right - 4, centre - 4, right + 4, centre + 4]]
    torch.testing.assert_close(out["boxes"], torch.tensor(expected))
    model.detections_per_image = 1
    assert len(model.decode(torch.cat([logits, sides], dim=1), images)[0]["boxes"]) == 1


def test_paired_iou() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 4.0, 4.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [6.0, 6.0, 9.0, 9.0]])
    torch.testing.assert_close(_paired_iou(a, b), torch.tensor([1.0, 50 / 150, 0.0]))


def test_the_quality_branch_learns_iou_without_moving_the_boxes() -> None:
    """The quality channel is trained towards each cell's box IoU; its loss sends no gradient into the sides."""
    torch.manual_seed(0)
    model = CenterNet(ENCODER, 1, width=16, quality=True).train()
    x = torch.randn(1, 1, 64, 64)
    assert model.network(x).shape[1] == 1 + 4 + 1
    losses = model.losses(x, [_target([10.0, 10.0, 40.0, 34.0])])
    assert set(losses) == {"heatmap", "box", "quality"} and torch.isfinite(losses["quality"])
    losses["quality"].backward()
    grad = model.sides[-1].weight.grad
    assert grad is not None and bool((grad[:4] == 0).all()) and bool((grad[4] != 0).any())
    old = CenterNet(ENCODER, 1, width=16)  # plans without quality_head: the old 4-channel layer loads
    assert old.sides[-1].out_channels == 4 and "quality" not in old.train().losses(x, [_target([1.0, 1.0, 9.0, 9.0])])


def test_the_plan_field_decides_the_quality_branch_and_old_plans_load_without_it() -> None:
    plan = {"architecture": "centernet", "encoder": f"timm:{ENCODER}", "num_classes": 1, "image_size": 64}
    old = build_detector(DetectorSpec.from_dict(plan))  # a plan written before session 25
    new = build_detector(DetectorSpec.from_dict({**plan, "quality_head": True}))
    assert not old.quality and old.sides[-1].out_channels == 4
    assert new.quality and new.sides[-1].out_channels == 5


def test_the_plan_field_decides_the_flip_test_and_old_plans_predict_without_it() -> None:
    plan = {"architecture": "centernet", "encoder": f"timm:{ENCODER}", "num_classes": 1, "image_size": 64}
    assert not build_detector(DetectorSpec.from_dict(plan)).flip_test  # a plan written before session 26
    assert build_detector(DetectorSpec.from_dict({**plan, "flip_test": True})).flip_test


def _mirrored(raw: torch.Tensor) -> torch.Tensor:
    """Maps of the mirror image as they should be: flipped left-right, left and right distances swapped."""
    flipped = raw.flip(-1)
    return torch.cat([flipped[:, :1], flipped[:, [3, 2, 1, 4]], flipped[:, 5:]], dim=1)


def test_the_flip_test_makes_the_maps_mirror_exactly_with_the_image() -> None:
    """With the flip test, the mirror image's maps are the image's maps mirrored (side distances swapped); the
    plain network is not mirror-symmetric, so the averaging is what makes it so."""
    torch.manual_seed(0)
    image = torch.randn(1, 1, 64, 96)
    plain = CenterNet(ENCODER, 1, width=16, quality=True).eval()
    flipping = CenterNet(ENCODER, 1, width=16, quality=True, flip_test=True).eval()
    flipping.load_state_dict(plain.state_dict())
    with torch.no_grad():
        torch.nn.init.normal_(plain.sides[-1].weight, std=0.1)  # outputs that differ between the two images
        flipping.load_state_dict(plain.state_dict())
        assert not torch.allclose(plain.network(image.flip(-1)), _mirrored(plain.network(image)), atol=1e-4)
        torch.testing.assert_close(flipping.network(image.flip(-1)), _mirrored(flipping.network(image)))
        straight, mirror = plain.network(image), _mirrored(plain.network(image.flip(-1)))
        torch.testing.assert_close(flipping.network(image), (straight + mirror) / 2)


def test_training_sees_each_image_once_with_the_flip_test() -> None:
    model = CenterNet(ENCODER, 1, width=16, flip_test=True).train()
    logits, sides, _ = model.maps(torch.zeros(2, 1, 64, 64))
    assert logits.shape[0] == sides.shape[0] == 2


def test_with_quality_the_better_fitting_box_wins_the_nms() -> None:
    """Two overlapping boxes: the hotter cell predicts a poor fit (quality logit −3), its neighbour a good one (+3);
    scored by sqrt(heat × quality), the neighbour's box is the one kept."""
    model = CenterNet(ENCODER, 1, width=16, score_threshold=0.01, quality=True).eval()
    h = w = 8
    raw = torch.zeros(1, 1 + 4 + 1, h, w)
    raw[0, 0] = -10.0
    raw[0, 0, 4, 4], raw[0, 0, 4, 5] = 3.0, 2.0
    raw[0, 1:5] = 8.0
    raw[0, 5, 4, 4], raw[0, 5, 4, 5] = -3.0, 3.0
    out = model.decode(raw, torch.zeros(1, 1, h * STRIDE, w * STRIDE))[0]
    right = (5 + 0.5) * STRIDE
    assert out["boxes"][0, 0].item() == pytest.approx(right - 8)
    heat, fit = torch.sigmoid(torch.tensor(2.0)), torch.sigmoid(torch.tensor(3.0))
    assert out["scores"][0].item() == pytest.approx(float(torch.sqrt(heat * fit)))
    assert len(out["boxes"]) == 1


def test_it_learns_to_find_a_bright_square() -> None:
    """A few hundred steps on one synthetic image: the top box is the square (IoU > 0.5)."""
    torch.manual_seed(0)
    model = build_detector(DetectorSpec("centernet", f"timm:{ENCODER}", 1, 64, extra={"head_width": 16}))
    image = torch.full((1, 1, 64, 64), -1.0)
    image[..., 20:36, 28:48] = 2.0
    box = [28.0, 20.0, 48.0, 36.0]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(120):
        loss = sum(model.losses(image, [_target(box)]).values())
        opt.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        opt.step()
    model.eval()
    with torch.no_grad():
        top = model(image)[0]["boxes"][0]
    from torchvision.ops import box_iou

    assert float(box_iou(top[None], torch.tensor([box]))[0, 0]) > 0.5


def test_an_unknown_encoder_is_named() -> None:
    with pytest.raises(UnknownNameError, match="not_a_model"):
        CenterNet("timm:not_a_model", 1)
