"""Crop geometry: windows around boxes, tiles along masks, and outputs mapped back to original pixels."""

from __future__ import annotations

import numpy as np
import pytest

from osteon.pipelines.geometry import (
    Region,
    boxes_to_original,
    crop_window,
    cut,
    mask_components,
    mask_to_original,
    overlaps,
    tiles_along,
)


def test_margin_grows_each_side_by_a_fraction_of_the_box() -> None:
    window = crop_window([40, 50, 60, 90], margin=0.25, min_size=0, square=False, image_hw=(200, 200))
    assert window == (35, 40, 65, 100)  # width 20 → +5 each side, height 40 → +10 each side


def test_square_and_min_size_grow_around_the_centre() -> None:
    assert crop_window([40, 50, 60, 90], margin=0, min_size=0, square=True, image_hw=(200, 200)) == (30, 50, 70, 90)
    assert crop_window([48, 48, 52, 52], margin=0, min_size=32, square=True, image_hw=(200, 200)) == (34, 34, 66, 66)


def test_window_is_shifted_inside_the_image_and_clipped_when_too_large() -> None:
    assert crop_window([0, 0, 10, 10], margin=0.5, min_size=0, square=True, image_hw=(100, 100)) == (0, 0, 20, 20)
    assert crop_window([90, 92, 100, 100], margin=0, min_size=30, square=True, image_hw=(100, 100)) == (
        70,
        70,
        100,
        100,
    )
    assert crop_window([10, 10, 20, 20], margin=0, min_size=500, square=True, image_hw=(60, 80)) == (0, 0, 80, 60)


@pytest.mark.parametrize("seed", range(5))
def test_boxes_in_a_crop_map_back_to_the_same_original_pixels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.random((90, 120)).astype(np.float32)
    x1, y1 = int(rng.integers(0, 80)), int(rng.integers(0, 60))
    box = np.array([x1, y1, x1 + 15, y1 + 12], dtype=float)
    region = Region(crop_window(box, margin=0.3, min_size=20, square=True, image_hw=image.shape), 1.0, "f")
    crop = cut(image, region)
    assert crop.shape == (region.height, region.width)
    inside = box - [region.xyxy[0], region.xyxy[1], region.xyxy[0], region.xyxy[1]]  # the box as the crop sees it
    assert np.all(inside >= 0) and inside[2] <= region.width and inside[3] <= region.height
    np.testing.assert_allclose(boxes_to_original(inside[None], region)[0], box)
    # the crop's pixels are the original's: a mask drawn in the crop lands on the same original pixels
    local = np.zeros(crop.shape, dtype=np.uint8)
    bx1, by1, bx2, by2 = inside.astype(int)
    local[by1:by2, bx1:bx2] = 1
    back = mask_to_original(local, region, image.shape)
    expected = np.zeros(image.shape, dtype=np.uint8)
    expected[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = 1
    np.testing.assert_array_equal(back, expected)
    np.testing.assert_array_equal(crop[by1:by2, bx1:bx2], image[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])])


def test_mask_components_largest_first() -> None:
    mask = np.zeros((50, 50), dtype=bool)
    mask[5:10, 5:10] = True  # 25 px
    mask[20:40, 30:45] = True  # 300 px
    comps = mask_components(mask)
    assert [a for _, a in comps] == [300.0, 25.0]
    np.testing.assert_array_equal(comps[0][0], [30, 20, 45, 40])


def test_tiles_follow_the_mask_with_enough_coverage() -> None:
    mask = np.zeros((64, 64), dtype=bool)
    mask[30:34, :] = True  # a horizontal band (cartilage-like)
    tiles = tiles_along(mask, size=16, stride=16, min_coverage=0.1, max_tiles=10)
    assert len(tiles) == 4  # the band spans four tiles across
    for tile in tiles:
        x1, y1, x2, y2 = tile.xyxy
        assert (x2 - x1, y2 - y1) == (16, 16)
        assert mask[y1:y2, x1:x2].mean() >= 0.1 and tile.score == pytest.approx(mask[y1:y2, x1:x2].mean())
    assert tiles_along(mask, size=16, stride=16, min_coverage=0.5, max_tiles=10) == []
    assert len(tiles_along(mask, size=16, stride=8, min_coverage=0.1, max_tiles=3)) == 3
    assert tiles_along(np.zeros((8, 8), bool), size=4, stride=4, min_coverage=0.1, max_tiles=3) == []


def test_overlap_by_centre_or_iou() -> None:
    region = Region((10, 10, 30, 30), 1.0, "")
    assert not overlaps(region, np.array([[25, 25, 40, 40]]))  # centre (32.5) outside, IoU 25/600 < 0.1
    assert overlaps(region, np.array([[20, 0, 50, 30]]))  # centre (35, 15) outside, IoU 200/1100 ≥ 0.1
    assert overlaps(region, np.array([[12, 12, 14, 14]]))  # centre inside
    assert not overlaps(region, np.zeros((0, 4)))
