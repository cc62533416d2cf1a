from __future__ import annotations

from pathlib import Path

import pytest
import torch

from osteon.errors import ConfigError, UnknownNameError
from osteon.models import create_model, get_model_entry, list_models
from osteon.models.heads import corn_loss, corn_probabilities
from osteon.models.registry import MODELS, ModelEntry, register_model


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_trains_one_step(name: str) -> None:
    torch.manual_seed(0)
    size = 75 if name == "inception_v3" else 64  # inception's stem needs ≥ 75 px
    model = create_model(name, 3, covariate_dim=4)
    x, cov = torch.randn(2, 1, size, size), torch.randn(2, 4)
    out = model(x, cov)
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    layers = dict(model.named_modules())
    assert model.feature_layer in layers, f"Grad-CAM layer {model.feature_layer} missing"


def test_unknown_model_lists_close_names() -> None:
    with pytest.raises(UnknownNameError, match="resnet18"):
        create_model("resnet81", 2)


def test_timm_passthrough_and_unknown_timm_name() -> None:
    assert get_model_entry("timm:resnet10t").timm_name == "resnet10t"
    with pytest.raises(UnknownNameError):
        get_model_entry("timm:not_a_model_xyz")


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model(ModelEntry(name="resnet18", timm_name="resnet18", feature_layer="layer4"))
    assert "resnet18" in MODELS


def test_pretrained_local_file_is_loaded_and_adapted_to_one_channel(tmp_path: Path) -> None:
    import timm

    rgb = timm.create_model("resnet18", num_classes=0)  # 3-channel weights, as a hub file would be
    weights = tmp_path / "resnet18_rgb.pth"
    torch.save(rgb.state_dict(), weights)
    model = create_model("resnet18", 2, pretrained=str(weights))
    conv = model.backbone.conv1.weight
    assert conv.shape[1] == 1
    torch.testing.assert_close(conv, rgb.conv1.weight.sum(dim=1, keepdim=True))  # timm's adapt_input_conv
    torch.testing.assert_close(model.backbone.layer4[1].conv2.weight, rgb.layer4[1].conv2.weight)


def test_pretrained_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither 'hub' nor an existing weights file"):
        create_model("resnet18", 2, pretrained=str(tmp_path / "nope.pth"))


def test_covariate_head_refuses_missing_covariates() -> None:
    model = create_model("tiny_cnn", 2, covariate_dim=3)
    with pytest.raises(ValueError, match="3 covariates"):
        model(torch.zeros(1, 1, 32, 32))


def test_corn_probabilities_are_a_distribution_and_rank_consistent() -> None:
    logits = torch.randn(50, 4)
    probs = corn_probabilities(logits)
    assert probs.shape == (50, 5)
    torch.testing.assert_close(probs.sum(1), torch.ones(50))
    survival = 1 - probs.cumsum(1)[:, :-1]  # P(grade > k)
    assert (survival[:, 1:] <= survival[:, :-1] + 1e-6).all()


def test_corn_loss_prefers_correct_ordinal_logits() -> None:
    grades = torch.tensor([0, 2, 4])
    good = torch.tensor([[-5.0, -5, -5, -5], [5, 5, -5, -5], [5, 5, 5, 5]])
    assert corn_loss(good, grades) < corn_loss(-good, grades)
    assert corn_loss(good, grades) < 0.05
