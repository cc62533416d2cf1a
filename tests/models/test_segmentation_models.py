"""Every registered segmentation architecture builds, runs forward and backward; encoders and weights resolve."""

from __future__ import annotations

import pytest
import torch

from osteon.errors import ConfigError, UnknownNameError
from osteon.models.segmentation import (
    SEGMENTATION_MODELS,
    create_segmentation_model,
    list_segmentation_models,
    resolve_encoder,
)

SMALL_ENCODER = "tu-mobilenetv3_small_050"  # the smallest timm encoder smp accepts: keeps the registry sweep fast


@pytest.mark.parametrize("name", list_segmentation_models())
def test_every_architecture_builds_and_trains_one_step(name: str) -> None:
    arch = SEGMENTATION_MODELS.get(name)
    net = create_segmentation_model(name, 3, encoder=SMALL_ENCODER if arch.uses_encoder else None)
    side = max(net.divisor, 32)
    x = torch.randn(2, 1, side, side + net.divisor)  # non-square
    out = net(x)
    assert out.shape == (2, 3, side, side + net.divisor)
    out.mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_unet_with_resnet18_is_the_cli_default_and_hrnet_works() -> None:
    unet = create_segmentation_model("unet", 2, encoder="resnet18")
    assert unet.encoder_name == "resnet18" and unet.divisor == 32 and unet.feature_layer == "net.encoder"
    assert unet.net.encoder.conv1.in_channels == 1  # single-channel radiographs
    hrnet = create_segmentation_model("unet", 1, encoder="timm:hrnet_w18_small")
    assert hrnet.encoder_name == "tu-hrnet_w18_small"
    assert hrnet(torch.randn(1, 1, 64, 96)).shape == (1, 1, 64, 96)


def test_input_not_a_multiple_of_the_divisor_says_how_to_fix() -> None:
    net = create_segmentation_model("tiny_unet", 1)
    with pytest.raises(ConfigError, match="multiples of 8"):
        net(torch.zeros(1, 1, 30, 32))


def test_unknown_names_list_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="unet"):
        create_segmentation_model("unett", 1)
    with pytest.raises(UnknownNameError, match="resnet18"):
        resolve_encoder("resnet81")
    with pytest.raises(ConfigError, match="tu-convnext_atto"):
        resolve_encoder("convnext_atto")  # a timm name without the tu- prefix
    with pytest.raises(ConfigError, match="no encoder"):
        create_segmentation_model("segresnet", 1, encoder="resnet18")


def test_local_encoder_weights_are_loaded_and_adapted_to_one_channel(tmp_path) -> None:
    import timm

    source = timm.create_model("resnet18", pretrained=False, num_classes=10)  # 3-channel stem, a head to ignore
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    net = create_segmentation_model("unet", 1, encoder="resnet18", pretrained=str(path))
    expected = source.state_dict()["conv1.weight"].sum(dim=1, keepdim=True)
    torch.testing.assert_close(net.net.encoder.conv1.weight, expected)
    torch.testing.assert_close(net.net.encoder.layer4[1].conv2.weight, source.state_dict()["layer4.1.conv2.weight"])


def test_unusable_weights_files_raise(tmp_path) -> None:
    with pytest.raises(ConfigError, match="neither 'hub' nor an existing"):
        create_segmentation_model("unet", 1, encoder="resnet18", pretrained=str(tmp_path / "missing.pth"))
    other = tmp_path / "other.pth"
    torch.save({"something.else": torch.zeros(3)}, other)
    with pytest.raises(ConfigError, match="fits"):
        create_segmentation_model("unet", 1, encoder="resnet18", pretrained=str(other))
