"""CAMs of segmentation (per class region) and detection (per box) models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from osteon.errors import ConfigError
from osteon.explain import explain_targets, randomization_sanity_check
from osteon.explain.dense_targets import bottleneck_layer
from osteon.tasks import TaskState, build_task

from .conftest import make_predictor, write_png

SEGMENT = TaskState(
    "segment",
    "mask",
    ["background", "bright"],
    None,
    False,
    "dice_ce",
    {"source": "mask", "mask_values": [0, 1], "patch_size": None, "window_overlap": 0.25, "image_size": 64},
)


class BrightSegmenter(nn.Module):
    """A binary segmenter (one sigmoid channel, as SegmentationTask uses for one class): logit = 4 * unit - 2,
    so pixels brighter than 0.5 are "bright"."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 1, 1)
        self.head = nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            self.features.weight.fill_(1.0)
            self.features.bias.fill_(2.0)  # x_norm + 2 = 4 * unit
            self.head.weight.fill_(1.0)
            self.head.bias.fill_(-2.0)
        self.feature_layer = "features"

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(torch.relu(self.features(x)))


def image_with_square(tmp_path, height=80, width=64, box=(50, 8, 70, 30)):
    image = np.full((height, width), 0.2, dtype=np.float32)
    y0, x0, y1, x1 = box
    image[y0:y1, x0:x1] = 0.95
    return write_png(tmp_path / "square.png", image)


def test_bottleneck_is_the_smallest_feature_map():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(4), nn.Conv2d(4, 4, 1), nn.Upsample(scale_factor=4))
    assert bottleneck_layer(net, torch.zeros(1, 1, 32, 32)) == "2"  # after the pooling, last at 8x8
    assert bottleneck_layer(net, torch.zeros(1, 1, 32, 32), within="0") == "0"
    with pytest.raises(ConfigError, match="--target-layer"):
        bottleneck_layer(nn.Flatten(), torch.zeros(1, 1, 4, 4))


def test_segment_map_covers_the_predicted_region(tmp_path):
    predictor = make_predictor(BrightSegmenter(), task="segment", names=("background", "bright"))
    predictor = type(predictor)(predictor.model, build_task(SEGMENT), predictor.preprocessing, predictor.covariates, {})
    (explanation,) = explain_targets(predictor, image_with_square(tmp_path), layer="features")
    assert explanation.target == "bright" and explanation.map.shape == (80, 64)
    y, x = np.unravel_index(np.argmax(explanation.map), explanation.map.shape)
    assert 50 <= y < 70 and 8 <= x < 30
    assert explanation.score > 0.5  # mean probability inside the predicted region
    with pytest.raises(ConfigError, match="foreground classes \\['bright'\\]"):
        explain_targets(predictor, image_with_square(tmp_path), targets=["bone"], layer="features")


def test_segment_registry_model_uses_its_bottleneck(tmp_path):
    torch.manual_seed(0)
    task = build_task(SEGMENT)
    model = task.build_model(model="tiny_unet", pretrained=None, covariate_dim=0, dropout=0.0)
    predictor = make_predictor(model)
    predictor = type(predictor)(model.eval(), task, predictor.preprocessing, predictor.covariates, {})
    explanations = explain_targets(predictor, image_with_square(tmp_path), targets=["all"], out_dir=tmp_path / "cams")
    assert [e.target for e in explanations] == ["bright"]
    assert explanations[0].map.shape == (80, 64) and explanations[0].overlay.is_file()
    layer = dict(model.named_modules())[explanations[0].layer]
    sizes = {}

    def record(_module, _inputs, output):
        sizes["hw"] = tuple(output.shape[-2:])

    layer.register_forward_hook(record)
    model(torch.zeros(1, 1, 64, 64))
    assert sizes["hw"][0] < 16  # a deep, coarse layer, not the full-resolution output
    check = randomization_sanity_check(predictor, image_with_square(tmp_path))
    assert len(check.steps) >= 2 and check.steps[0].map.shape == (64, 64)


def test_detection_maps_one_per_box_with_the_box_drawn(tmp_path):
    from osteon.models.detection import DetectorSpec, build_detector
    from osteon.tasks._detect_plan import plan_anchors

    torch.manual_seed(0)
    sizes, ratios = plan_anchors("retinanet", {"side_px_percentiles": {"5": 8.0}})
    spec = DetectorSpec(
        "retinanet",
        "resnet18",
        2,
        64,
        tuple(map(tuple, sizes)),
        tuple(ratios),
        score_threshold=0.0,
        fpn_channels=32,
        detections_per_image=20,
    )
    task = build_task(TaskState("detect", "boxes", ["fracture", "implant"]))
    predictor = make_predictor(build_detector(spec))
    predictor = type(predictor)(predictor.model, task, predictor.preprocessing, predictor.covariates, {})
    path = image_with_square(tmp_path)
    explanations = explain_targets(predictor, path, out_dir=tmp_path / "cams")
    assert 1 <= len(explanations) <= 5
    assert explanations[0].target.startswith("box1_") and explanations[0].layer == "detector.backbone.body.layer4"
    scores = [e.score for e in explanations]
    assert scores == sorted(scores, reverse=True)
    first = explanations[0]
    assert first.map.shape == (80, 64) and np.isfinite(first.map).all()
    x1, y1, x2, y2 = first.region  # original pixels: the 80x64 image sits in the 64x64 input at scale 0.8
    assert -20 < x1 < x2 < 90 and -20 < y1 < y2 < 100
    with Image.open(first.overlay) as overlay:
        rgb = np.asarray(overlay.convert("RGB"))[:, :64]
    edge_y = int(np.clip(round(y1), 0, 79))
    row = rgb[edge_y, int(np.clip(round(x1), 0, 63)) : int(np.clip(round(x2), 0, 63)) + 1]
    assert (row == 255).all(axis=1).mean() > 0.5  # the white outline of the explained box
