"""Box conversions, the letterbox mapping (round trip), joint augmentation of boxes, bad annotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from osteon.data.boxes import (
    box_iou,
    box_records,
    cxcywhn_to_xyxy,
    json_list,
    parse_boxes,
    to_input_space,
    to_original_space,
    xywh_to_xyxy,
    xyxy_to_cxcywhn,
    xyxy_to_xywh,
)
from osteon.data.transforms import Letterbox, Preprocessing, build_augmentation, load_unit_image
from osteon.errors import ConfigError, DatasetFormatError

BOXES = np.array([[10.0, 20.0, 40.0, 35.0], [0.0, 0.0, 5.5, 7.25]])


def test_coco_and_yolo_conversions_are_inverse_and_hand_checked() -> None:
    assert xyxy_to_xywh(BOXES)[0].tolist() == [10, 20, 30, 15]
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(BOXES)), BOXES)
    # 200×100 image: box [10, 20, 40, 35] → centre (25, 27.5) / (200, 100), size (30, 15) / (200, 100)
    np.testing.assert_allclose(xyxy_to_cxcywhn(BOXES, width=200, height=100)[0], [0.125, 0.275, 0.15, 0.15])
    np.testing.assert_allclose(
        cxcywhn_to_xyxy(xyxy_to_cxcywhn(BOXES, width=200, height=100), width=200, height=100), BOXES
    )
    assert xyxy_to_xywh(np.zeros((0, 4))).shape == (0, 4)


def test_iou_by_hand() -> None:
    iou = box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou, [[50 / 150, 0.0, 1.0]])


def test_iou_and_conversions_are_torchvision_ops() -> None:
    """One implementation: the NumPy API returns exactly what torchvision.ops computes (float64)."""
    from torchvision.ops import box_convert
    from torchvision.ops import box_iou as tv_box_iou

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 40, (20, 2))], axis=1)
    boxes[3, 2:] = boxes[3, :2]  # a zero-area box
    t = torch.from_numpy(boxes)
    expected = torch.nan_to_num(tv_box_iou(t, t[:7]), nan=0.0).numpy()
    np.testing.assert_array_equal(box_iou(boxes, boxes[:7]), expected)
    assert box_iou(boxes[3:4], boxes[3:4]).tolist() == [[0.0]]  # empty union: 0, not nan
    assert box_iou(np.zeros((0, 4)), boxes).shape == (0, 20)
    np.testing.assert_array_equal(xyxy_to_xywh(boxes), box_convert(t, "xyxy", "xywh").numpy())
    np.testing.assert_array_equal(xyxy_to_cxcywhn(boxes, width=1, height=1), box_convert(t, "xyxy", "cxcywh").numpy())


def test_box_records_are_the_one_parser_of_box_json() -> None:
    text = '[{"xyxy":[1,2,5,6],"label":"fx","score":0.5,"id":7},{"xyxy":[0,0,3,3],"label":2}]'
    records = box_records(text)
    assert records == [
        {"xyxy": [1.0, 2.0, 5.0, 6.0], "label": "fx", "score": 0.5, "id": 7},
        {"xyxy": [0.0, 0.0, 3.0, 3.0], "label": "2"},
    ]
    assert box_records(json.loads(text)) == records  # an already parsed list reads the same
    for empty in (None, "", "  ", float("nan"), pd.NA, "[]"):
        assert box_records(empty) == [] and json_list(empty) == []
    assert json_list('[{"points": [[0, 0], [1, 0], [1, 1]]}]', column="polygons")[0]["points"][1] == [1, 0]


@pytest.mark.parametrize(
    ("value", "scored", "match"),
    [
        ('{"xyxy":[1,1,5,5]}', False, "must be a JSON list"),
        ("[1, 2, 3, 4]", False, "box #0 .* 4 numbers"),
        ('[{"xyxy":[1,1,5,"5"],"label":"fx"}]', False, "4 numbers"),
        ('[{"xyxy":[1,1,5,NaN],"label":"fx"}]', False, "4 numbers"),
        ('[{"xyxy":[1,1,5,5],"label":"fx"},{"xyxy":[1,1,5,5]}]', False, "box #1 .* no 'label'"),
        ('[{"xyxy":[1,1,5,5],"label":""}]', False, "no 'label'"),
        ('[{"xyxy":[1,1,5,5],"label":"fx"}]', True, "no numeric 'score'"),
        ('[{"xyxy":[1,1,5,5],"label":"fx","score":"high"}]', False, "no numeric 'score'"),
        ("[{", False, "not valid JSON"),
    ],
)
def test_box_records_name_the_image_and_the_box(value: str, scored: bool, match: str) -> None:
    with pytest.raises(DatasetFormatError, match=match) as info:
        box_records(value, image="img3.png", scored=scored)
    assert str(info.value).startswith("img3.png:")


@pytest.mark.parametrize("hw", [(60, 100), (100, 60), (64, 64), (37, 91)])
def test_letterbox_round_trip_on_real_files(tmp_path: Path, hw: tuple[int, int]) -> None:
    h, w = hw
    path = tmp_path / "im.png"
    Image.fromarray(np.zeros((h, w), np.uint8)).save(path)
    _, geometry = load_unit_image(path, Preprocessing(image_size=48))
    assert geometry.original_hw == (h, w)
    boxes = np.array([[0, 0, w, h], [w * 0.2, h * 0.3, w * 0.6, h * 0.9]])
    inside = to_input_space(boxes, geometry)
    # the whole image spans the input's long side exactly, centred on the short side
    assert max(inside[0, 2] - inside[0, 0], inside[0, 3] - inside[0, 1]) == pytest.approx(48, abs=0.5)
    assert inside[0].min() >= -0.5 and inside[0].max() <= 48.5
    np.testing.assert_allclose(to_original_space(inside, geometry), boxes, atol=1e-9)


def test_letterbox_mapping_matches_the_pixels(tmp_path: Path) -> None:
    """A bright block drawn in the original lands where the mapped box says, in the letterboxed input."""
    image = np.zeros((80, 160), np.uint8)
    image[20:40, 100:140] = 255
    path = tmp_path / "block.png"
    Image.fromarray(image).save(path)
    unit, geometry = load_unit_image(path, Preprocessing(image_size=64))
    x1, y1, x2, y2 = to_input_space([[100, 20, 140, 40]], geometry)[0]
    ys, xs = np.nonzero(unit > 0.5)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == pytest.approx((x1, y1, x2, y2), abs=1.0)


def test_original_space_clips_to_the_image() -> None:
    geometry = Letterbox(scale=0.5, pad_x=0, pad_y=10, original_hw=(40, 100))
    out = to_original_space([[-5, 0, 60, 40]], geometry)
    assert out.tolist() == [[0.0, 0.0, 100.0, 40.0]]


def test_boxes_follow_a_horizontal_flip_and_affine_augmentation() -> None:
    """The engine's augmentation moves boxes with the image: the box still frames the bright block."""
    torch.manual_seed(0)
    image = torch.zeros(1, 64, 64)
    image[:, 10:20, 5:25] = 1.0
    boxes = tv_tensors.BoundingBoxes([[5, 10, 25, 20]], format="XYXY", canvas_size=(64, 64))
    flip = build_augmentation(hflip=True, rotate_degrees=0, scale_range=0, brightness=0, contrast=0, gamma=0)
    flip.transforms[0].p = 1.0
    flipped, moved = flip(image, boxes)
    assert moved.tolist() == [[39, 10, 59, 20]]
    assert flipped[0, 10:20, 39:59].min() == 1.0 and flipped[0, 10:20, 5:25].max() == 0.0
    affine = build_augmentation(hflip=False, rotate_degrees=0, scale_range=0.3, brightness=0.1, contrast=0.1, gamma=0.2)
    for _ in range(5):
        out, moved = affine(image, boxes)
        ys, xs = torch.nonzero(out[0] > 0.5, as_tuple=True)
        x1, y1, x2, y2 = moved[0].tolist()
        assert xs.min() >= x1 - 1.5 and xs.max() + 1 <= x2 + 1.5 and ys.min() >= y1 - 1.5 and ys.max() + 1 <= y2 + 1.5


def test_parse_boxes_reads_labels_and_scores() -> None:
    parsed = parse_boxes(
        '[{"xyxy":[1,2,5,6],"label":"b","score":0.5},{"xyxy":[0,0,3,3],"label":"a","score":0.9}]',
        class_index={"a": 0, "b": 1},
        scored=True,
    )
    assert parsed.labels.tolist() == [1, 0] and parsed.scores.tolist() == [0.5, 0.9]
    assert len(parse_boxes("[]", class_index={"a": 0})) == 0 and len(parse_boxes(None, class_index={})) == 0


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ('[{"xyxy":[10,10,5,20],"label":"fx"}]', DatasetFormatError, "zero or negative size"),
        ('[{"xyxy":[10,10,10,20],"label":"fx"}]', DatasetFormatError, "zero or negative"),
        ('[{"xyxy":[10,10,120,20],"label":"fx"}]', DatasetFormatError, "outside the 100×50 image"),
        ('[{"xyxy":[-8,10,20,20],"label":"fx"}]', DatasetFormatError, "8.0 px outside"),
        ('[{"xyxy":[1,1,5,5],"label":"tumour"}]', ConfigError, "category 'tumour'"),
        ('[{"xyxy":[1,1,5],"label":"fx"}]', DatasetFormatError, "4 numbers"),
        ("{not json", DatasetFormatError, "not valid JSON"),
    ],
)
def test_bad_annotations_raise_clear_errors(value: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        parse_boxes(value, class_index={"fx": 0}, image="img7.png", size_hw=(50, 100))
    assert "img7.png" in str(info.value)


def test_rounding_outside_the_image_is_clipped() -> None:
    parsed = parse_boxes('[{"xyxy":[-0.4,2,100.0000001,50.5],"label":"fx"}]', class_index={"fx": 0}, size_hw=(50, 100))
    assert parsed.boxes.tolist() == [[0.0, 2.0, 100.0, 50.0]]
