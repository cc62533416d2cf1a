"""explain_image: maps on the original pixel grid, aligned with the evidence, written as overlay + .npy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from osteon.errors import ConfigError
from osteon.explain import explain_image, explain_targets

from .conftest import write_png


def bright_square_image(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Dark image with one bright rectangle ``(y0, x0, y1, x1)``."""
    image = np.full((height, width), 0.1, dtype=np.float32)
    y0, x0, y1, x1 = box
    image[y0:y1, x0:x1] = 1.0
    return image


def peak(values: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(np.argmax(values), values.shape))  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("height", "width", "box"),
    [(120, 80, (80, 10, 110, 40)), (60, 150, (5, 110, 35, 140)), (64, 64, (40, 8, 60, 28))],
)
def test_map_is_on_the_original_grid_and_peaks_on_the_evidence(brightness_predictor, tmp_path, height, width, box):
    path = write_png(tmp_path / "image.png", bright_square_image(height, width, box))
    explanation = explain_image(brightness_predictor, path, target_class="1")
    assert explanation.map.shape == (height, width)
    assert explanation.input_map.shape == (64, 64)
    y, x = peak(explanation.map)
    y0, x0, y1, x1 = box
    assert y0 <= y < y1 and x0 <= x < x1
    # the letterbox padding is cropped away: the map is not squeezed into part of the image
    inside = explanation.map[y0:y1, x0:x1].mean()
    outside = np.delete(
        explanation.map.ravel(), np.ravel_multi_index(np.mgrid[y0:y1, x0:x1].reshape(2, -1), (height, width))
    ).mean()
    assert inside > 3 * outside


def test_exif_rotated_jpeg_map_follows_the_displayed_image(brightness_predictor, tmp_path):
    stored = bright_square_image(60, 100, (5, 70, 25, 95))  # bright top-right corner as stored
    pil = Image.fromarray((stored * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    path = tmp_path / "rotated.jpg"
    pil.save(path, exif=exif.tobytes(), quality=95)
    explanation = explain_image(brightness_predictor, path, target_class="1")
    displayed = np.rot90(stored, k=-1)  # what a viewer shows: (100, 60), square at bottom-right
    assert explanation.map.shape == displayed.shape == (100, 60)
    y, x = peak(explanation.map)
    assert displayed[y, x] == 1.0


def test_overlay_png_and_raw_npy(brightness_predictor, tmp_path):
    path = write_png(tmp_path / "knee.png", bright_square_image(90, 70, (10, 10, 40, 40)))
    explanation = explain_image(brightness_predictor, path, target_class="1", out_dir=tmp_path / "cams")
    assert explanation.overlay == tmp_path / "cams" / "knee_gradcam_1.png"
    overlay = np.asarray(Image.open(explanation.overlay))
    assert overlay.shape[0] == 90 and overlay.shape[1] > 70  # image at full resolution + colour bar
    raw = np.load(explanation.raw)
    np.testing.assert_array_equal(raw, explanation.map)
    # hot pixels of the map are red-dominated in the overlay, cold ones blue-dominated
    hot, cold = peak(raw), np.unravel_index(np.argmin(raw), raw.shape)
    assert overlay[hot][0] > overlay[hot][2] and overlay[cold][2] > overlay[cold][0]


def test_default_target_is_the_prediction_and_all_gives_every_class(brightness_predictor, tmp_path):
    path = write_png(tmp_path / "bright.png", np.full((64, 64), 0.9, dtype=np.float32))
    single = explain_image(brightness_predictor, path)
    assert single.target == single.prediction == "1"
    both = explain_targets(brightness_predictor, path, targets=["all"])
    assert [e.target for e in both] == ["0", "1"]
    assert both[0].score + both[1].score == pytest.approx(1.0, abs=1e-5)


def test_unknown_class_and_layer_are_explained(brightness_predictor, tmp_path):
    path = write_png(tmp_path / "x.png", np.full((32, 32), 0.5, dtype=np.float32))
    with pytest.raises(ConfigError, match="'fracture' is not one of the model's classes"):
        explain_image(brightness_predictor, path, target_class="fracture")
    with pytest.raises(ConfigError, match=r"no layer 'backbone\.poool'.*backbone\.pool"):
        explain_image(brightness_predictor, path, layer="backbone.poool")


def test_layer_override_changes_the_resolution_of_the_evidence(brightness_predictor, tmp_path):
    path = write_png(tmp_path / "x.png", bright_square_image(64, 64, (0, 0, 16, 16)))
    coarse = explain_image(brightness_predictor, path, target_class="1")
    fine = explain_image(brightness_predictor, path, target_class="1", layer="backbone.conv")
    assert fine.layer == "backbone.conv" and coarse.layer == "backbone.pool"
    assert not np.allclose(coarse.map, fine.map)
    assert peak(fine.map)[0] < 16 and peak(fine.map)[1] < 16


def test_trained_model_looks_at_the_square(square_model):
    predictor, tests = square_model
    hits = 0
    for path, (y0, x0) in tests:
        explanation = explain_image(predictor, Path(path), target_class="1")
        y, x = peak(explanation.map)
        hits += (y0 - 4 <= y < y0 + 16) and (x0 - 4 <= x < x0 + 16)  # the 12-px square, 4 px of slack
    assert hits >= 8, f"CAM peak inside the square in only {hits} of {len(tests)} images"
