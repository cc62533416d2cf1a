"""``--pretrained RUN_OR_FILE``: a backbone.pt of ``osteon pretrain`` loads into every kind of model, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from osteon.errors import ConfigError
from osteon.models import create_model
from osteon.models.backbone_file import save_backbone
from osteon.models.detection import DetectorSpec, build_detector
from osteon.models.network import create_backbone
from osteon.models.pretrained import backbone_source, encoder_architecture, model_architecture
from osteon.models.registry import get_model_entry
from osteon.models.segmentation import create_segmentation_model

PROVENANCE = {
    "method": "simclr",
    "epochs": 3,
    "data": ["phantoms"],
    "n_images": 40,
    "image_size": 32,
    "created_utc": "2026-01-01T00:00:00+00:00",
    "osteon_version": "0.1.0",
    "run": "pre",
    "final_loss": 4.2,
}


def write_backbone(folder: Path, model: str, in_chans: int = 1, seed: int = 1) -> Path:
    """A pretrain run directory holding backbone.pt of ``model`` (weights: a seeded random initialisation)."""
    torch.manual_seed(seed)
    backbone = create_backbone(get_model_entry(model), in_chans=in_chans)
    folder.mkdir(parents=True, exist_ok=True)
    save_backbone(folder / "backbone.pt", model, in_chans, backbone.state_dict(), PROVENANCE)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pretrain")
    return {
        "resnet18": write_backbone(root / "resnet18", "resnet18"),
        "resnet18_rgb": write_backbone(root / "resnet18_rgb", "resnet18", in_chans=3),
        "tiny_cnn": write_backbone(root / "tiny_cnn", "tiny_cnn"),
    }


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "backbone.pt", weights_only=True)["state_dict"]


def assert_loaded(module: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = module.state_dict()
    assert state, "nothing to compare"
    for key, value in state.items():
        assert torch.equal(value, expected[key.removeprefix("model.")]), key


@pytest.mark.parametrize("model", ["resnet18", "tiny_cnn"])
def test_classifier_backbone_is_the_pretrained_one(runs: dict[str, Path], model: str) -> None:
    expected = weights(runs[model])
    for given in (runs[model], runs[model] / "backbone.pt"):  # the run directory or its file
        net = create_model(model, 2, pretrained=str(given))
        assert_loaded(net.backbone, expected)
        assert set(net.backbone.state_dict()) == set(expected)
    torch.manual_seed(0)
    fresh = create_model(model, 2)
    assert not all(torch.equal(v, expected[k]) for k, v in fresh.backbone.state_dict().items() if v.is_floating_point())


def test_segmentation_encoder_is_the_pretrained_resnet(runs: dict[str, Path]) -> None:
    net = create_segmentation_model("unet", 2, encoder="resnet18", pretrained=str(runs["resnet18"]))
    assert_loaded(net.net.encoder, weights(runs["resnet18"]))


@pytest.mark.parametrize("architecture", ["faster_rcnn", "retinanet"])
def test_detector_body_is_the_pretrained_resnet(runs: dict[str, Path], architecture: str) -> None:
    per_level = (16.0,) if architecture == "faster_rcnn" else (16.0, 20.0, 25.0)
    spec = DetectorSpec(
        architecture, "resnet18", 1, 64, anchor_sizes=(per_level,) * 5, fpn_channels=32, box_head_width=64
    )
    detector = build_detector(spec, pretrained=str(runs["resnet18"]))
    assert_loaded(detector.detector.backbone.body, weights(runs["resnet18"]))


def test_the_default_detector_encoder_is_the_pretrained_one(runs: dict[str, Path]) -> None:
    detector = build_detector(DetectorSpec("centernet", "timm:resnet18", 1, 64), pretrained=str(runs["resnet18"]))
    assert_loaded(detector.encoder, weights(runs["resnet18"]))
    with pytest.raises(ConfigError, match="resnet18"):  # another encoder: the file's architecture is named
        build_detector(DetectorSpec("centernet", "timm:resnet34", 1, 64), pretrained=str(runs["resnet18"]))


def test_study_and_slice_backbones_are_the_pretrained_one(runs: dict[str, Path]) -> None:
    from osteon.models.slices import create_slice_model
    from osteon.models.study import backbone_factory

    expected = weights(runs["tiny_cnn"])
    assert_loaded(backbone_factory("tiny_cnn", pretrained=str(runs["tiny_cnn"]))(), expected)
    slices = create_slice_model("tiny_cnn", 2, pretrained=str(runs["tiny_cnn"]))
    assert_loaded(slices.backbone, expected)


def test_timm_feature_extractors_take_the_classifier_names(tmp_path: Path) -> None:
    """smp's ``tu-`` encoder (timm ``features_only``: ``stages_0``, prefix ``model.``) maps the names back."""
    run = write_backbone(tmp_path / "atto", "timm:convnext_atto")
    net = create_segmentation_model("unet", 2, encoder="tu-convnext_atto", pretrained=str(run))
    expected = weights(run)
    for key, value in net.net.encoder.state_dict().items():
        head, _, rest = key.removeprefix("model.").partition(".")
        name, _, index = head.rpartition("_")
        original = f"{name}.{index}.{rest}" if name else f"{head}.{rest}"
        assert torch.equal(value, expected.get(key.removeprefix("model."), expected.get(original))), key


def test_another_architecture_is_refused_with_what_the_file_holds(runs: dict[str, Path]) -> None:
    path = runs["tiny_cnn"] / "backbone.pt"
    with pytest.raises(ConfigError) as caught:
        create_model("resnet18", 2, pretrained=str(runs["tiny_cnn"]))
    message = str(caught.value)
    for part in (str(path), "tiny_cnn", "simclr", "resnet18", "Fix:", "--model tiny_cnn"):
        assert part in message, part
    with pytest.raises(ConfigError, match=r"encoder 'resnet18'.*tiny_cnn is no encoder"):
        create_segmentation_model("unet", 2, encoder="resnet18", pretrained=str(runs["tiny_cnn"]))
    spec = DetectorSpec("retinanet", "resnet34", 1, 64, anchor_sizes=((16.0, 20.0, 25.0),) * 5, fpn_channels=32)
    with pytest.raises(ConfigError, match=r"'resnet18' ≠ 'resnet34'.*--encoder resnet18"):
        build_detector(spec, pretrained=str(runs["resnet18"]))


def test_another_channel_count_is_refused(runs: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match=r"3 input channel\(s\) ≠ 1.*--channels rgb"):
        create_model("resnet18", 2, pretrained=str(runs["resnet18_rgb"]))
    with pytest.raises(ConfigError, match=r"1 input channel\(s\) ≠ 3.*--channels grey"):
        create_model("resnet18", 2, in_chans=3, pretrained=str(runs["resnet18"]))
    with pytest.raises(ConfigError, match="3 input channel"):
        create_segmentation_model("unet", 2, encoder="resnet18", pretrained=str(runs["resnet18_rgb"]))
    assert_loaded(
        create_model("resnet18", 2, in_chans=3, pretrained=str(runs["resnet18_rgb"])).backbone,
        weights(runs["resnet18_rgb"]),
    )


def test_plain_weight_files_and_hub_keep_their_meaning(tmp_path: Path) -> None:
    torch.manual_seed(3)
    plain = tmp_path / "tiny.pth"
    torch.save(create_backbone(get_model_entry("tiny_cnn")).state_dict(), plain)
    assert backbone_source(str(plain)) is None and backbone_source("hub") is None and backbone_source(None) is None
    assert_loaded(create_model("tiny_cnn", 2, pretrained=str(plain)).backbone, torch.load(plain, weights_only=True))
    with pytest.raises(ConfigError, match=r"directory without backbone\.pt"):
        backbone_source(str(tmp_path))


def test_architecture_names() -> None:
    assert model_architecture("resnet18") == "resnet18" == model_architecture("timm:resnet18")
    assert model_architecture("tiny_cnn") == "tiny_cnn"
    assert encoder_architecture("resnet18") == encoder_architecture("tu-resnet18") == "resnet18"
    assert encoder_architecture("timm:convnext_atto") == "convnext_atto"
    assert encoder_architecture("efficientnet-b0").startswith("smp:")
