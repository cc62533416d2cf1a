"""Masks: polygon rasterisation against known shapes, label-map reading and its errors, letterbox in and out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from osteon.data.masks import (
    encode_label_map,
    label_map_to_input,
    letterbox_polygons,
    mask_values,
    probabilities_to_original,
    rasterize_polygons,
    read_label_map,
)
from osteon.data.transforms import Letterbox, letterbox
from osteon.errors import ImageReadError, ManifestError

FRACTURE = {"fracture": 1}


def test_square_polygon_covers_exactly_the_pixels_whose_centres_are_inside() -> None:
    square = [{"points": [[2, 1], [6, 1], [6, 4], [2, 4]], "label": "fracture"}]
    mask = rasterize_polygons(square, (6, 8), FRACTURE)
    expected = np.zeros((6, 8), dtype=np.uint8)
    expected[1:4, 2:6] = 1  # rows 1..3, cols 2..5: centres (2.5..5.5, 1.5..3.5) are inside
    np.testing.assert_array_equal(mask, expected)


def test_triangle_area_matches_its_geometry() -> None:
    triangle = [{"points": [[0, 0], [100, 0], [0, 100]], "label": "fracture"}]
    mask = rasterize_polygons(triangle, (100, 100), FRACTURE)
    assert abs(int(mask.sum()) - 5000) <= 100  # area 100·100/2; the diagonal row is half in, half out
    assert mask[0, 0] == 1 and mask[99, 99] == 0 and mask[10, 80] == 1 and mask[80, 30] == 0


def test_later_polygons_overwrite_and_multilabel_keeps_overlaps() -> None:
    polygons = [
        {"points": [[0, 0], [6, 0], [6, 6], [0, 6]], "label": "bone"},
        {"points": [[3, 3], [8, 3], [8, 8], [3, 8]], "label": "fracture"},
    ]
    classes = {"bone": 1, "fracture": 2}
    labels = rasterize_polygons(polygons, (8, 8), classes)
    assert labels[1, 1] == 1 and labels[4, 4] == 2 and labels[7, 7] == 2
    channels = rasterize_polygons(polygons, (8, 8), classes, multilabel=True)
    assert channels.shape == (2, 8, 8)
    assert channels[0, 4, 4] and channels[1, 4, 4]  # overlap kept in both channels
    assert int(channels[0].sum()) == 36 and int(channels[1].sum()) == 25


def test_scale_and_offset_rasterise_into_the_letterbox() -> None:
    polygons = [{"points": [[10, 20], [30, 20], [30, 40], [10, 40]], "label": "fracture"}]
    geometry = Letterbox(scale=0.5, pad_x=0, pad_y=7, original_hw=(50, 100))
    mask = letterbox_polygons(polygons, geometry, 50, FRACTURE)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (17, 26, 5, 14)  # (20·0.5+7 .. 40·0.5+7), (5 .. 15)


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ({"points": [[0, 0], [1, 1]], "label": "fracture"}, "≥ 3"),
        ({"points": [[0, 0], [1, 1], [0, 2]], "label": "tumour"}, "'tumour'"),
        ({"points": "nonsense", "label": "fracture"}, "numeric"),
    ],
)
def test_bad_polygons_raise_with_the_reason(polygon: dict, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        rasterize_polygons([polygon], (4, 4), FRACTURE, where="row 3")


# -- label maps ---------------------------------------------------------------------------------------------------
def test_read_grayscale_and_palette_label_maps(tmp_path) -> None:
    labels = np.zeros((5, 7), dtype=np.uint8)
    labels[1:3, 2:5] = 2
    labels[4, 6] = 1
    PILImage.fromarray(labels).save(tmp_path / "gray.png")
    palette = PILImage.fromarray(labels, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (253 * 3))
    palette.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "gray.png"), labels)
    np.testing.assert_array_equal(read_label_map(tmp_path / "palette.png"), labels)  # indices, not colours


def test_read_nifti_label_map(tmp_path) -> None:
    import nibabel as nib

    labels = np.zeros((6, 9), dtype=np.int16)
    labels[2:4, 1:8] = 3
    nib.save(nib.Nifti1Image(labels.T[..., None], np.eye(4)), tmp_path / "mask.nii.gz")  # NIfTI axes are (x, y, z)
    np.testing.assert_array_equal(read_label_map(tmp_path / "mask.nii.gz"), labels)


def test_mask_size_mismatch_names_both_sizes(tmp_path) -> None:
    PILImage.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(ImageReadError, match=r"10×12.*20×24"):
        read_label_map(tmp_path / "m.png", expected_hw=(20, 24))


def test_colour_mask_is_rejected(tmp_path) -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    PILImage.fromarray(rgb).save(tmp_path / "rgb.png")
    with pytest.raises(ImageReadError, match="colour"):
        read_label_map(tmp_path / "rgb.png")


def test_unknown_class_value_raises_and_known_values_are_encoded() -> None:
    raw = np.array([[0, 255], [255, 0]])
    np.testing.assert_array_equal(encode_label_map(raw, [0, 255]), [[0, 1], [1, 0]])
    with pytest.raises(ImageReadError, match=r"\[7\]"):
        encode_label_map(np.array([[0, 7]]), [0, 1, 2], path="m.png")


def test_a_grayscale_image_is_not_a_label_map() -> None:
    image = np.arange(100).reshape(10, 10)
    with pytest.raises(ImageReadError, match="100 distinct values"):
        mask_values(image, path="x.png")
    assert mask_values(np.array([[0, 3], [3, 1]])) == [0, 1, 3]


# -- letterbox in and out -----------------------------------------------------------------------------------------
def test_label_map_follows_its_image_into_the_letterbox() -> None:
    image = np.zeros((40, 80), dtype=np.float32)
    labels = np.zeros((40, 80), dtype=np.uint8)
    image[10:30, 20:60] = 1.0
    labels[10:30, 20:60] = 1
    boxed, geometry = letterbox(image, 32)
    mask = label_map_to_input(labels, geometry, 32, n_classes=2)
    assert mask.shape == (32, 32)
    np.testing.assert_array_equal(mask == 1, boxed > 0.5)  # the same pixels light up in image and mask


def test_input_probabilities_map_back_onto_a_non_square_original() -> None:
    h, w = 70, 190
    labels = np.zeros((h, w), dtype=np.uint8)
    labels[20:50, 40:150] = 1
    _, geometry = letterbox(np.zeros((h, w), dtype=np.float32), 64)
    small = label_map_to_input(labels, geometry, 64, n_classes=2)
    probs = torch.nn.functional.one_hot(torch.from_numpy(small).long(), 2).permute(2, 0, 1).float()
    back = probabilities_to_original(probs, geometry).argmax(0).numpy()
    assert back.shape == (h, w)
    iou = np.logical_and(back == 1, labels == 1).sum() / np.logical_or(back == 1, labels == 1).sum()
    assert iou > 0.9
    rows, cols = np.nonzero(back == 1)
    assert abs(rows.mean() - 34.5) < 1.0 and abs(cols.mean() - 94.5) < 1.0  # centred where the original is


def _exact_centre_rule(points: np.ndarray, h: int, w: int) -> np.ndarray:
    """The hand-written rasteriser Osteon used before pycocotools: pixel centres inside the polygon (matplotlib)."""
    from matplotlib.path import Path as PolygonPath

    yy, xx = np.mgrid[0:h, 0:w]
    centres = np.column_stack([xx.ravel() + 0.5, yy.ravel() + 0.5])
    return PolygonPath(points).contains_points(centres).reshape(h, w)


def _star_shaped(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    points = rng.uniform(low, high, (n, 2))
    centre = points.mean(axis=0)
    return points[np.argsort(np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0]))]


def test_pycocotools_equals_the_centre_rule_on_axis_aligned_polygons() -> None:
    from osteon.data.masks import polygon_mask

    rng = np.random.default_rng(0)
    for _ in range(200):  # integer and fractional corners, partly outside the 40×50 grid
        (x0, x1), (y0, y1) = np.sort(rng.uniform(-3, 53, 2)), np.sort(rng.uniform(-3, 43, 2))
        if rng.random() < 0.5:
            x0, x1, y0, y1 = np.round([x0, x1, y0, y1])
        rect = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        np.testing.assert_array_equal(polygon_mask(rect, (40, 50)), _exact_centre_rule(rect, 40, 50))


def test_pycocotools_differs_from_the_centre_rule_only_within_a_fifth_of_a_pixel_of_an_edge() -> None:
    from osteon.data.masks import polygon_mask

    rng = np.random.default_rng(1)
    differing = total = 0
    for _ in range(150):
        points = _star_shaped(rng, int(rng.integers(3, 9)), -5, 55)
        ours, exact = polygon_mask(points, (40, 50)), _exact_centre_rule(points, 40, 50)
        total += int(exact.sum())
        for row, col in zip(*np.nonzero(ours != exact), strict=True):
            centre = np.array([col + 0.5, row + 0.5])
            starts, ends = points, np.roll(points, -1, axis=0)
            along = np.clip(
                np.einsum("ij,ij->i", centre - starts, ends - starts)
                / np.einsum("ij,ij->i", ends - starts, ends - starts),
                0,
                1,
            )
            distance = np.min(np.linalg.norm(centre - (starts + along[:, None] * (ends - starts)), axis=1))
            assert distance < 0.25, (points, row, col, distance)
            differing += 1
    assert differing < 0.01 * total  # boundary pixels only: under 1 % of the area


def test_a_line_thinner_than_an_input_pixel_survives_the_letterbox() -> None:
    """A 2-px line of a 400-px image (a fascicle) covers a quarter of a 64-px input pixel; it must not vanish."""
    labels = np.zeros((200, 400), dtype=np.uint8)
    for col in range(40, 360):  # a slanted 2-px line
        row = 60 + col // 4
        labels[row : row + 2, col] = 1
    _, geometry = letterbox(np.zeros((200, 400), dtype=np.float32), 64)
    small = label_map_to_input(labels, geometry, 64, n_classes=2)
    length = 320 * geometry.scale  # columns the line spans in the input
    rows, cols = np.nonzero(small == 1)
    assert length <= len(rows) <= 3 * length  # continuous, about one pixel wide
    assert cols.min() <= 40 * geometry.scale + 3 and cols.max() >= 360 * geometry.scale - 3  # the whole length
    assert len(np.unique(cols)) >= 0.9 * length  # no gaps
    multi = label_map_to_input(labels[None].astype(bool), geometry, 64, n_classes=2)
    assert multi.shape == (1, 64, 64) and multi.sum() >= length
